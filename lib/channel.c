/* WS_CHANNEL and WsRequestSecurityToken: the IPC stub.
 *
 * A channel holds its state, the STS URL given to WsOpenChannel (or a
 * profile name), and one connection to the broker, opened on the first
 * request and kept.  A request is validated and encoded completely before
 * anything is sent, so a bad property never reaches the broker, and an
 * asynchronous call never reads the caller's property memory after it
 * returned.  Any surprise in the broker's answer fails closed:
 * WS_E_INVALID_FORMAT and the channel FAULTED. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "ipc.h"

struct _WS_CHANNEL {
	pthread_mutex_t mu;          /* state, fd (for abort), pending, aborted */
	WS_CHANNEL_STATE state;
	WS_CHANNEL_TYPE type;
	char *socket_path;
	char *url;                   /* UTF-8 STS URL, when opened by address */
	char *profile;               /* UTF-8 profile name, when opened by profile */
	int fd;                      /* broker connection, -1 before the first request */

	uint32_t timeout_ms;         /* whole-request deadline */
	bool timeout_set;            /* the caller chose it: tell the broker */
	bool timeouts_enabled;
	uint32_t max_reply;          /* 0 = the broker's default */

	/* Embedded mode (embedded.c): a private broker on a socketpair. */
	bool embedded;
	struct emb_creds *creds;     /* until handed to the private broker */
	pid_t broker_pid;            /* the private broker, 0 when none */
	char *broker_url;            /* the URL it serves */
	char *ca_file;               /* UTF-8; NULL: $WSTRUST_CA_FILE or the system bundle */
	uint32_t soap_version;       /* 11 or 12 (WS_CHANNEL_PROPERTY_ENVELOPE_VERSION) */

	bool pending;                /* a request is in flight */
	pthread_cond_t idle;         /* signalled when pending becomes false */
	bool aborted;                /* WsAbortChannel hit the request in flight */
	bool thread_valid;           /* `thread` must be joined or detached */
	pthread_t thread;
};

static void lock(WS_CHANNEL *ch) { pthread_mutex_lock(&ch->mu); }
static void unlock(WS_CHANNEL *ch) { pthread_mutex_unlock(&ch->mu); }

static const char *state_name(WS_CHANNEL_STATE s)
{
	switch (s) {
	case WS_CHANNEL_STATE_CREATED: return "CREATED";
	case WS_CHANNEL_STATE_OPENING: return "OPENING";
	case WS_CHANNEL_STATE_ACCEPTING: return "ACCEPTING";
	case WS_CHANNEL_STATE_OPEN: return "OPEN";
	case WS_CHANNEL_STATE_FAULTED: return "FAULTED";
	case WS_CHANNEL_STATE_CLOSING: return "CLOSING";
	case WS_CHANNEL_STATE_CLOSED: return "CLOSED";
	}
	return "?";
}

/* ---- channel properties ---- */

static HRESULT set_property(WS_CHANNEL *ch, WS_CHANNEL_PROPERTY_ID id, const void *value, ULONG size, WS_ERROR *error)
{
	if (!value)
		return err_set(error, E_INVALIDARG, "channel property %d has no value", (int)id);
	switch (id) {
	case WS_CHANNEL_PROPERTY_RECEIVE_RESPONSE_TIMEOUT:
		if (size != sizeof(ULONG))
			return err_set(error, E_INVALIDARG, "WS_CHANNEL_PROPERTY_RECEIVE_RESPONSE_TIMEOUT must be a ULONG (ms)");
		if (*(const ULONG *)value == 0)
			return err_set(error, E_INVALIDARG, "WS_CHANNEL_PROPERTY_RECEIVE_RESPONSE_TIMEOUT must not be 0");
		ch->timeout_ms = *(const ULONG *)value;
		ch->timeout_set = true;
		return S_OK;
	case WS_CHANNEL_PROPERTY_ENABLE_TIMEOUTS:
		if (size != sizeof(BOOL))
			return err_set(error, E_INVALIDARG, "WS_CHANNEL_PROPERTY_ENABLE_TIMEOUTS must be a BOOL");
		ch->timeouts_enabled = *(const BOOL *)value != FALSE;
		return S_OK;
	case WS_CHANNEL_PROPERTY_MAX_BUFFERED_MESSAGE_SIZE:
		if (size != sizeof(ULONG))
			return err_set(error, E_INVALIDARG, "WS_CHANNEL_PROPERTY_MAX_BUFFERED_MESSAGE_SIZE must be a ULONG");
		if (*(const ULONG *)value == 0 || *(const ULONG *)value > IPC_MAX_REPLY)
			return err_set(error, E_INVALIDARG,
			               "WS_CHANNEL_PROPERTY_MAX_BUFFERED_MESSAGE_SIZE must be 1..%u", IPC_MAX_REPLY);
		ch->max_reply = *(const ULONG *)value;
		return S_OK;
	case WS_CHANNEL_PROPERTY_ENVELOPE_VERSION: {
		if (size != sizeof(WS_ENVELOPE_VERSION))
			return err_set(error, E_INVALIDARG, "WS_CHANNEL_PROPERTY_ENVELOPE_VERSION must be a WS_ENVELOPE_VERSION");
		WS_ENVELOPE_VERSION v = *(const WS_ENVELOPE_VERSION *)value;
		if (v != WS_ENVELOPE_VERSION_SOAP_1_1 && v != WS_ENVELOPE_VERSION_SOAP_1_2)
			return err_set(error, E_INVALIDARG,
			               "WS_CHANNEL_PROPERTY_ENVELOPE_VERSION %d is not supported (SOAP 1.1 or 1.2)", (int)v);
		/* Used by a private broker; the daemon's profile says its own. */
		ch->soap_version = v == WS_ENVELOPE_VERSION_SOAP_1_1 ? 11 : 12;
		return S_OK;
	}
	case WS_CHANNEL_PROPERTY_STATE:
	case WS_CHANNEL_PROPERTY_CHANNEL_TYPE:
		return err_set(error, E_INVALIDARG, "channel property %d is read only", (int)id);
	default:
		if ((int)id < 0 || id > WS_CHANNEL_PROPERTY_MAX_HTTP_REQUEST_HEADERS_BUFFER_SIZE)
			return err_set(error, E_INVALIDARG, "unknown channel property id %d", (int)id);
		/* Transport tuning for an HTTP channel: the broker owns the HTTP
		 * side, so these have no effect here. */
		return S_OK;
	}
}

WS_EXPORT HRESULT WINAPI WsCreateChannel(WS_CHANNEL_TYPE channelType, WS_CHANNEL_BINDING channelBinding,
                                         const WS_CHANNEL_PROPERTY *properties, ULONG propertyCount,
                                         const WS_SECURITY_DESCRIPTION *securityDescription, WS_CHANNEL **channel,
                                         WS_ERROR *error)
{
	if (!channel)
		return err_set(error, E_INVALIDARG, "WsCreateChannel: channel is NULL");
	if (channelType != WS_CHANNEL_TYPE_REQUEST)
		return err_set(error, E_INVALIDARG,
		               "WsCreateChannel: channel type %d is not supported (use WS_CHANNEL_TYPE_REQUEST)", (int)channelType);
	if (channelBinding != WS_HTTP_CHANNEL_BINDING)
		return err_set(error, E_INVALIDARG,
		               "WsCreateChannel: channel binding %d is not supported (use WS_HTTP_CHANNEL_BINDING)", (int)channelBinding);
	if (propertyCount && !properties)
		return err_set(error, E_INVALIDARG, "WsCreateChannel: properties is NULL with propertyCount %u", propertyCount);
	if (securityDescription && securityDescription->securityBindingCount && !securityDescription->securityBindings)
		return err_set(error, E_INVALIDARG, "WsCreateChannel: securityBindings is NULL with securityBindingCount %u",
		               securityDescription->securityBindingCount);
	/* Daemon or embedded mode: see webservices.h ("Modes").  Daemon mode is
	 * the default, so that unchanged Windows code, which fills in
	 * credentials, reaches the system broker and its policy; a private
	 * broker with the caller's credentials is an explicit choice. */
	const char *mode = secure_getenv("WSTRUST_MODE");
	bool force_embedded = mode && strcmp(mode, "embedded") == 0;
	bool auto_mode = mode && strcmp(mode, "auto") == 0;
	if (mode && *mode && !force_embedded && !auto_mode && strcmp(mode, "daemon") != 0)
		return err_set(error, E_INVALIDARG, "WSTRUST_MODE is '%.64s'; use daemon, embedded or auto", mode);
	struct emb_creds *creds = NULL;
	if (force_embedded || auto_mode) {
		HRESULT hr = emb_creds_from_description(securityDescription, &creds, error);
		if (FAILED(hr))
			return hr;
		if (force_embedded && !creds)
			return err_set(error, E_INVALIDARG,
			               "WSTRUST_MODE=embedded, but the security description carries no credential for a private broker");
	}

	WS_CHANNEL *ch = calloc(1, sizeof(*ch));
	if (!ch) {
		emb_creds_free(creds);
		return err_set(error, E_OUTOFMEMORY, "out of memory creating a channel");
	}
	pthread_mutex_init(&ch->mu, NULL);
	pthread_cond_init(&ch->idle, NULL);
	ch->fd = -1;
	ch->creds = creds;
	ch->embedded = creds != NULL;
	ch->soap_version = 12;   /* WS_HTTP_CHANNEL_BINDING's default envelope */
	const char *ca = secure_getenv("WSTRUST_CA_FILE");
	if (ca && *ca && !(ch->ca_file = strdup(ca))) {
		WsFreeChannel(ch);
		return err_set(error, E_OUTOFMEMORY, "out of memory creating a channel");
	}
	ch->type = channelType;
	ch->state = WS_CHANNEL_STATE_CREATED;
	ch->timeout_ms = WSTRUST_DEFAULT_TIMEOUT_MS;
	ch->timeouts_enabled = true;
	const char *sock = secure_getenv("WSTRUST_SOCKET");
	ch->socket_path = strdup(sock && *sock ? sock : WSTRUST_DEFAULT_SOCKET);
	if (!ch->socket_path) {
		WsFreeChannel(ch);
		return err_set(error, E_OUTOFMEMORY, "out of memory creating a channel");
	}
	for (ULONG i = 0; i < propertyCount; i++) {
		HRESULT hr = set_property(ch, properties[i].id, properties[i].value, properties[i].valueSize, error);
		if (FAILED(hr)) {
			WsFreeChannel(ch);
			return hr;
		}
	}
	*channel = ch;
	return S_OK;
}

WS_EXPORT HRESULT wstrust_set_channel_socket(WS_CHANNEL *channel, const char *path, WS_ERROR *error)
{
	if (!channel || !path || !*path)
		return err_set(error, E_INVALIDARG, "wstrust_set_channel_socket: channel and a non-empty path are required");
	if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return err_set(error, E_INVALIDARG, "broker socket path is too long (max %zu bytes): %s",
		               sizeof(((struct sockaddr_un *)0)->sun_path) - 1, path);
	lock(channel);
	if (channel->state != WS_CHANNEL_STATE_CREATED) {
		WS_CHANNEL_STATE s = channel->state;
		unlock(channel);
		return err_set(error, WS_E_INVALID_OPERATION,
		               "wstrust_set_channel_socket: the channel is %s; the socket can be set only while CREATED", state_name(s));
	}
	if (channel->fd >= 0) {
		unlock(channel);
		return err_set(error, WS_E_INVALID_OPERATION,
		               "wstrust_set_channel_socket: this channel already has a private broker (embedded mode)");
	}
	char *copy = strdup(path);
	if (!copy) {
		unlock(channel);
		return err_set(error, E_OUTOFMEMORY, "out of memory");
	}
	free(channel->socket_path);
	channel->socket_path = copy;
	/* Naming a broker socket selects daemon mode: the credentials are
	 * not needed, so they are dropped now. */
	emb_creds_free(channel->creds);
	channel->creds = NULL;
	channel->embedded = false;
	unlock(channel);
	return S_OK;
}

WS_EXPORT HRESULT wstrust_set_channel_ca_file(WS_CHANNEL *channel, const char *path, WS_ERROR *error)
{
	if (!channel || !path || path[0] != '/')
		return err_set(error, E_INVALIDARG, "wstrust_set_channel_ca_file: channel and an absolute path are required");
	if (strlen(path) > IPC_MAX_SHORT)
		return err_set(error, E_INVALIDARG, "wstrust_set_channel_ca_file: the path is too long");
	char *copy = strdup(path);
	if (!copy)
		return err_set(error, E_OUTOFMEMORY, "out of memory");
	lock(channel);
	if (channel->state != WS_CHANNEL_STATE_CREATED) {
		WS_CHANNEL_STATE s = channel->state;
		unlock(channel);
		free(copy);
		return err_set(error, WS_E_INVALID_OPERATION,
		               "wstrust_set_channel_ca_file: the channel is %s; the CA file can be set only while CREATED",
		               state_name(s));
	}
	free(channel->ca_file);
	channel->ca_file = copy;
	unlock(channel);
	return S_OK;
}

static void drop_broker(WS_CHANNEL *ch);

/* Embedded mode: start the private broker on the first open; a later open
 * (after WsResetChannel) reuses it for the same URL. */
static HRESULT open_embedded(WS_CHANNEL *ch, char *url, WS_ERROR *error)
{
	lock(ch);
	if (ch->state != WS_CHANNEL_STATE_CREATED) {
		WS_CHANNEL_STATE s = ch->state;
		unlock(ch);
		free(url);
		return err_set(error, WS_E_INVALID_OPERATION,
		               "the channel is %s; only a CREATED channel can be opened (WsResetChannel first)", state_name(s));
	}
	if (ch->fd >= 0) {
		if (strcmp(ch->broker_url, url) != 0) {
			HRESULT hr = err_set(error, WS_E_INVALID_OPERATION,
			                     "this channel's private broker serves %s; create a new channel for %s", ch->broker_url,
			                     url);
			unlock(ch);
			free(url);
			return hr;
		}
		free(ch->url);
		ch->url = url;
		ch->state = WS_CHANNEL_STATE_OPEN;
		unlock(ch);
		return S_OK;
	}
	if (!ch->creds) {
		unlock(ch);
		free(url);
		return err_set(error, WS_E_INVALID_OPERATION,
		               "this channel's private broker is gone and its credentials were wiped when it got them; "
		               "create a new channel");
	}
	char *burl = strdup(url);
	if (!burl) {
		unlock(ch);
		free(url);
		return err_set(error, E_OUTOFMEMORY, "out of memory");
	}
	ch->state = WS_CHANNEL_STATE_OPENING;
	unlock(ch);

	int64_t deadline = ch->timeouts_enabled ? ipc_now_ms() + ch->timeout_ms : 0;
	int fd = -1;
	pid_t pid = 0;
	HRESULT hr = emb_start(&ch->creds, url, ch->soap_version, ch->ca_file, deadline, &fd, &pid, error);

	lock(ch);
	if (SUCCEEDED(hr) && ch->state != WS_CHANNEL_STATE_OPENING) {
		/* WsAbortChannel while the broker started. */
		emb_stop(fd, pid);
		hr = err_set(error, WS_E_OPERATION_ABORTED, "the channel was aborted while its private broker started");
	} else if (SUCCEEDED(hr)) {
		ch->fd = fd;
		ch->broker_pid = pid;
		free(ch->broker_url);
		ch->broker_url = burl;
		burl = NULL;
		free(ch->url);
		ch->url = url;
		url = NULL;
		ch->state = WS_CHANNEL_STATE_OPEN;
	} else {
		/* As on Windows, a failed open leaves the channel FAULTED. */
		ch->state = WS_CHANNEL_STATE_FAULTED;
	}
	unlock(ch);
	free(burl);
	free(url);
	return hr;
}

static HRESULT open_common(WS_CHANNEL *ch, char *url, char *profile, WS_ERROR *error)
{
	if (ch->embedded && url)
		return open_embedded(ch, url, error);
	lock(ch);
	if (ch->state != WS_CHANNEL_STATE_CREATED) {
		WS_CHANNEL_STATE s = ch->state;
		unlock(ch);
		free(url);
		free(profile);
		return err_set(error, WS_E_INVALID_OPERATION,
		               "the channel is %s; only a CREATED channel can be opened (WsResetChannel first)", state_name(s));
	}
	free(ch->url);
	free(ch->profile);
	ch->url = url;
	ch->profile = profile;
	ch->state = WS_CHANNEL_STATE_OPEN;
	unlock(ch);
	return S_OK;
}

WS_EXPORT HRESULT WINAPI WsOpenChannel(WS_CHANNEL *channel, const WS_ENDPOINT_ADDRESS *endpointAddress,
                                       const WS_ASYNC_CONTEXT *asyncContext, WS_ERROR *error)
{
	/* Opening completes at once, so an async context changes nothing: the
	 * result is returned and the callback is not called (Windows' rule for
	 * calls that complete synchronously). */
	(void)asyncContext;
	if (!channel || !endpointAddress)
		return err_set(error, E_INVALIDARG, "WsOpenChannel: channel and endpointAddress are required");
	const WS_STRING *u = &endpointAddress->url;
	if (u->length == 0 || !u->chars)
		return err_set(error, WS_E_INVALID_ENDPOINT_URL, "WsOpenChannel: the endpoint URL is empty");
	if (u->length > IPC_MAX_SHORT)
		return err_set(error, WS_E_INVALID_ENDPOINT_URL, "WsOpenChannel: the endpoint URL is longer than %u characters",
		               IPC_MAX_SHORT);
	char *url = utf16_to_utf8(u->chars, u->length);
	if (!url)
		return errno == ENOMEM ? err_set(error, E_OUTOFMEMORY, "out of memory")
		                       : err_set(error, WS_E_INVALID_ENDPOINT_URL,
		                                 "WsOpenChannel: the endpoint URL is not valid UTF-16 or contains NUL");
	if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) {
		HRESULT hr = err_set(error, WS_E_INVALID_ENDPOINT_URL,
		                     "WsOpenChannel: endpoint URL %s is not an http(s) URL (WS_HTTP_CHANNEL_BINDING)", url);
		free(url);
		return hr;
	}
	return open_common(channel, url, NULL, error);
}

WS_EXPORT HRESULT wstrust_open_channel_profile(WS_CHANNEL *channel, const char *profile, WS_ERROR *error)
{
	if (!channel || !profile || !*profile)
		return err_set(error, E_INVALIDARG, "wstrust_open_channel_profile: channel and a profile name are required");
	if (channel->embedded)
		return err_set(error, E_INVALIDARG,
		               "wstrust_open_channel_profile: profiles belong to the system broker; this channel is in embedded "
		               "mode (its security description carries credentials): open it with WsOpenChannel");
	if (strlen(profile) > IPC_MAX_SHORT)
		return err_set(error, E_INVALIDARG, "profile name is too long");
	char *p = strdup(profile);
	if (!p)
		return err_set(error, E_OUTOFMEMORY, "out of memory");
	return open_common(channel, NULL, p, error);
}

/* Wait for the library thread of the last async call, unless we are it. */
static void reap_thread(WS_CHANNEL *ch)
{
	lock(ch);
	bool valid = ch->thread_valid;
	pthread_t t = ch->thread;
	ch->thread_valid = false;
	unlock(ch);
	if (!valid)
		return;
	if (pthread_equal(t, pthread_self()))
		pthread_detach(t);
	else
		pthread_join(t, NULL);
}

/* Daemon mode: drop the connection (the next request connects again).
 * Embedded mode: the private broker and its connection stay until the
 * channel is freed or the connection breaks (drop_broker): it holds the
 * only copy of the credentials. */
static void disconnect(WS_CHANNEL *ch)
{
	if (ch->embedded)
		return;
	if (ch->fd >= 0) {
		close(ch->fd);
		ch->fd = -1;
	}
}

static void drop_broker(WS_CHANNEL *ch)
{
	if (!ch->embedded) {
		disconnect(ch);
		return;
	}
	if (ch->fd >= 0 || ch->broker_pid > 0)
		emb_stop(ch->fd, ch->broker_pid);
	ch->fd = -1;
	ch->broker_pid = 0;
}

WS_EXPORT HRESULT WINAPI WsAbortChannel(WS_CHANNEL *channel, WS_ERROR *error)
{
	if (!channel)
		return err_set(error, E_INVALIDARG, "WsAbortChannel: channel is NULL");
	lock(channel);
	if (channel->pending) {
		channel->aborted = true;
		/* Wakes the request's poll(); the request thread closes the fd. */
		if (channel->fd >= 0)
			shutdown(channel->fd, SHUT_RDWR);
	}
	if (channel->state == WS_CHANNEL_STATE_OPEN || channel->state == WS_CHANNEL_STATE_OPENING ||
	    channel->state == WS_CHANNEL_STATE_CLOSING)
		channel->state = WS_CHANNEL_STATE_FAULTED;
	unlock(channel);
	return S_OK;
}

WS_EXPORT HRESULT WINAPI WsCloseChannel(WS_CHANNEL *channel, const WS_ASYNC_CONTEXT *asyncContext, WS_ERROR *error)
{
	(void)asyncContext; /* completes at once: see WsOpenChannel */
	if (!channel)
		return err_set(error, E_INVALIDARG, "WsCloseChannel: channel is NULL");
	lock(channel);
	WS_CHANNEL_STATE s = channel->state;
	if (s != WS_CHANNEL_STATE_OPEN && s != WS_CHANNEL_STATE_FAULTED) {
		unlock(channel);
		return err_set(error, WS_E_INVALID_OPERATION, "WsCloseChannel: the channel is %s, not OPEN or FAULTED",
		               state_name(s));
	}
	/* Closing cancels a request in flight, which completes with
	 * WS_E_OPERATION_ABORTED. */
	if (channel->pending) {
		channel->aborted = true;
		if (channel->fd >= 0)
			shutdown(channel->fd, SHUT_RDWR);
	}
	channel->state = WS_CHANNEL_STATE_CLOSING;
	unlock(channel);
	reap_thread(channel);
	lock(channel);
	/* A synchronous request on another thread still uses the connection:
	 * let it complete (aborted) before closing it. */
	while (channel->pending)
		pthread_cond_wait(&channel->idle, &channel->mu);
	disconnect(channel);
	channel->state = WS_CHANNEL_STATE_CLOSED;
	unlock(channel);
	return S_OK;
}

WS_EXPORT HRESULT WINAPI WsResetChannel(WS_CHANNEL *channel, WS_ERROR *error)
{
	if (!channel)
		return err_set(error, E_INVALIDARG, "WsResetChannel: channel is NULL");
	lock(channel);
	WS_CHANNEL_STATE s = channel->state;
	if (s != WS_CHANNEL_STATE_CREATED && s != WS_CHANNEL_STATE_CLOSED && s != WS_CHANNEL_STATE_FAULTED) {
		unlock(channel);
		return err_set(error, WS_E_INVALID_OPERATION,
		               "WsResetChannel: the channel is %s; close or abort it first", state_name(s));
	}
	if (channel->pending) {
		unlock(channel);
		return err_set(error, WS_E_INVALID_OPERATION, "WsResetChannel: a request is still pending");
	}
	unlock(channel);
	reap_thread(channel);
	lock(channel);
	disconnect(channel);
	free(channel->url);
	free(channel->profile);
	channel->url = channel->profile = NULL;
	channel->aborted = false;
	channel->state = WS_CHANNEL_STATE_CREATED;
	unlock(channel);
	return S_OK;
}

WS_EXPORT void WINAPI WsFreeChannel(WS_CHANNEL *channel)
{
	if (!channel)
		return;
	lock(channel);
	if (channel->pending) {
		channel->aborted = true;
		if (channel->fd >= 0)
			shutdown(channel->fd, SHUT_RDWR);
	}
	unlock(channel);
	reap_thread(channel);
	drop_broker(channel);
	emb_creds_free(channel->creds);
	free(channel->socket_path);
	free(channel->url);
	free(channel->profile);
	free(channel->broker_url);
	free(channel->ca_file);
	pthread_cond_destroy(&channel->idle);
	pthread_mutex_destroy(&channel->mu);
	free(channel);
}

WS_EXPORT HRESULT WINAPI WsGetChannelProperty(WS_CHANNEL *channel, WS_CHANNEL_PROPERTY_ID id, void *value,
                                              ULONG valueSize, WS_ERROR *error)
{
	if (!channel || !value)
		return err_set(error, E_INVALIDARG, "WsGetChannelProperty: channel and value are required");
	switch (id) {
	case WS_CHANNEL_PROPERTY_STATE:
		if (valueSize != sizeof(WS_CHANNEL_STATE))
			break;
		lock(channel);
		*(WS_CHANNEL_STATE *)value = channel->state;
		unlock(channel);
		return S_OK;
	case WS_CHANNEL_PROPERTY_CHANNEL_TYPE:
		if (valueSize != sizeof(WS_CHANNEL_TYPE))
			break;
		*(WS_CHANNEL_TYPE *)value = channel->type;
		return S_OK;
	case WS_CHANNEL_PROPERTY_RECEIVE_RESPONSE_TIMEOUT:
		if (valueSize != sizeof(ULONG))
			break;
		*(ULONG *)value = channel->timeout_ms;
		return S_OK;
	case WS_CHANNEL_PROPERTY_ENABLE_TIMEOUTS:
		if (valueSize != sizeof(BOOL))
			break;
		*(BOOL *)value = channel->timeouts_enabled;
		return S_OK;
	case WS_CHANNEL_PROPERTY_MAX_BUFFERED_MESSAGE_SIZE:
		if (valueSize != sizeof(ULONG))
			break;
		*(ULONG *)value = channel->max_reply;
		return S_OK;
	default:
		return err_set(error, E_INVALIDARG, "WsGetChannelProperty: property %d is not available", (int)id);
	}
	return err_set(error, E_INVALIDARG, "WsGetChannelProperty: valueSize %u is wrong for property %d", valueSize, (int)id);
}

WS_EXPORT HRESULT WINAPI WsSetChannelProperty(WS_CHANNEL *channel, WS_CHANNEL_PROPERTY_ID id, const void *value,
                                              ULONG valueSize, WS_ERROR *error)
{
	if (!channel)
		return err_set(error, E_INVALIDARG, "WsSetChannelProperty: channel is NULL");
	lock(channel);
	bool pending = channel->pending;
	unlock(channel);
	if (pending)
		return err_set(error, WS_E_INVALID_OPERATION, "WsSetChannelProperty: a request is pending");
	return set_property(channel, id, value, valueSize, error);
}

/* ---- the request ---- */

static const char *const rst_prop_names[] = {
	[WS_REQUEST_SECURITY_TOKEN_PROPERTY_APPLIES_TO] = "WS_REQUEST_SECURITY_TOKEN_PROPERTY_APPLIES_TO",
	[WS_REQUEST_SECURITY_TOKEN_PROPERTY_TRUST_VERSION] = "WS_REQUEST_SECURITY_TOKEN_PROPERTY_TRUST_VERSION",
	[WS_REQUEST_SECURITY_TOKEN_PROPERTY_SECURE_CONVERSATION_VERSION] = "WS_REQUEST_SECURITY_TOKEN_PROPERTY_SECURE_CONVERSATION_VERSION",
	[WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_TYPE] = "WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_TYPE",
	[WS_REQUEST_SECURITY_TOKEN_PROPERTY_REQUEST_ACTION] = "WS_REQUEST_SECURITY_TOKEN_PROPERTY_REQUEST_ACTION",
	[WS_REQUEST_SECURITY_TOKEN_PROPERTY_EXISTING_TOKEN] = "WS_REQUEST_SECURITY_TOKEN_PROPERTY_EXISTING_TOKEN",
	[WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_TYPE] = "WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_TYPE",
	[WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_SIZE] = "WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_SIZE",
	[WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_ENTROPY] = "WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_ENTROPY",
	[WS_REQUEST_SECURITY_TOKEN_PROPERTY_LOCAL_REQUEST_PARAMETERS] = "WS_REQUEST_SECURITY_TOKEN_PROPERTY_LOCAL_REQUEST_PARAMETERS",
	[WS_REQUEST_SECURITY_TOKEN_PROPERTY_SERVICE_REQUEST_PARAMETERS] = "WS_REQUEST_SECURITY_TOKEN_PROPERTY_SERVICE_REQUEST_PARAMETERS",
	[WS_REQUEST_SECURITY_TOKEN_PROPERTY_MESSAGE_PROPERTIES] = "WS_REQUEST_SECURITY_TOKEN_PROPERTY_MESSAGE_PROPERTIES",
	[WS_REQUEST_SECURITY_TOKEN_PROPERTY_BEARER_KEY_TYPE_VERSION] = "WS_REQUEST_SECURITY_TOKEN_PROPERTY_BEARER_KEY_TYPE_VERSION",
};
#define N_RST_PROPS 14

/* What the request asked for, to check the answer against. */
struct req_expect {
	uint32_t key_type;  /* 0 = not asked */
};

struct parsed_props {
	bool seen[N_RST_PROPS];
	uint32_t u32[N_RST_PROPS];
	const WS_ENDPOINT_ADDRESS *applies_to;
	const WS_XML_STRING *token_type;
	WS_SECURITY_TOKEN *existing;
	const WS_XML_BUFFER *local_params, *service_params;
	uint32_t max_reply;
};

/* "<property name><what follows>" as the error string. */
__attribute__((format(printf, 3, 4)))
static HRESULT bad_prop(WS_ERROR *error, int id, const char *fmt, ...)
{
	const char *name = (id > 0 && id < N_RST_PROPS) ? rst_prop_names[id] : "property";
	char rest[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rest, sizeof(rest), fmt, ap);
	va_end(ap);
	return err_set(error, E_INVALIDARG, "%s%s", name, rest);
}

static HRESULT u32_prop(const WS_REQUEST_SECURITY_TOKEN_PROPERTY *p, uint32_t lo, uint32_t hi, uint32_t *out,
                        WS_ERROR *error)
{
	/* Every enum and ULONG property is 4 bytes on this ABI. */
	if (p->valueSize != sizeof(uint32_t))
		return err_set(error, E_INVALIDARG, "%s: valueSize is %u, expected %zu", rst_prop_names[p->id],
		               p->valueSize, sizeof(uint32_t));
	uint32_t v;
	memcpy(&v, p->value, sizeof(v));
	if (v < lo || v > hi)
		return err_set(error, E_INVALIDARG, "%s: value %u is out of range (%u..%u)", rst_prop_names[p->id], v, lo, hi);
	*out = v;
	return S_OK;
}

static HRESULT parse_message_properties(const WS_REQUEST_SECURITY_TOKEN_PROPERTY *p, struct parsed_props *pp,
                                        WS_ERROR *error)
{
	const char *name = rst_prop_names[p->id];
	if (p->valueSize != sizeof(WS_MESSAGE_PROPERTIES))
		return err_set(error, E_INVALIDARG, "%s: valueSize is %u, expected sizeof(WS_MESSAGE_PROPERTIES) = %zu", name,
		               p->valueSize, sizeof(WS_MESSAGE_PROPERTIES));
	const WS_MESSAGE_PROPERTIES *mp = p->value;
	if (mp->propertyCount && !mp->properties)
		return err_set(error, E_INVALIDARG, "%s: properties is NULL with propertyCount %u", name, mp->propertyCount);
	for (ULONG i = 0; i < mp->propertyCount; i++) {
		const WS_MESSAGE_PROPERTY *m = &mp->properties[i];
		if (m->id != WS_MESSAGE_PROPERTY_HEAP_PROPERTIES)
			return err_set(error, E_INVALIDARG,
			               "%s: message property %d is not supported (only WS_MESSAGE_PROPERTY_HEAP_PROPERTIES)", name,
			               (int)m->id);
		if (m->valueSize != sizeof(WS_HEAP_PROPERTIES) || !m->value)
			return err_set(error, E_INVALIDARG, "%s: WS_MESSAGE_PROPERTY_HEAP_PROPERTIES must be a WS_HEAP_PROPERTIES", name);
		const WS_HEAP_PROPERTIES *hp = m->value;
		if (hp->propertyCount && !hp->properties)
			return err_set(error, E_INVALIDARG, "%s: heap properties is NULL with propertyCount %u", name, hp->propertyCount);
		for (ULONG k = 0; k < hp->propertyCount; k++) {
			const WS_HEAP_PROPERTY *h = &hp->properties[k];
			if (h->id == WS_HEAP_PROPERTY_TRIM_SIZE)
				continue;
			if (h->id != WS_HEAP_PROPERTY_MAX_SIZE || h->valueSize != sizeof(SIZE_T) || !h->value)
				return err_set(error, E_INVALIDARG,
				               "%s: heap property %d is not supported (WS_HEAP_PROPERTY_MAX_SIZE as a SIZE_T is)", name,
				               (int)h->id);
			SIZE_T max = *(const SIZE_T *)h->value;
			if (max == 0)
				return err_set(error, E_INVALIDARG, "%s: WS_HEAP_PROPERTY_MAX_SIZE must not be 0", name);
			/* The reply quota: capped by the protocol's own bound. */
			pp->max_reply = max > IPC_MAX_REPLY ? IPC_MAX_REPLY : (uint32_t)max;
		}
	}
	return S_OK;
}

static HRESULT parse_props(const WS_REQUEST_SECURITY_TOKEN_PROPERTY *props, ULONG n, struct parsed_props *pp,
                           WS_ERROR *error)
{
	HRESULT hr = S_OK;
	if (n && !props)
		return err_set(error, E_INVALIDARG, "WsRequestSecurityToken: properties is NULL with propertyCount %u", n);
	for (ULONG i = 0; i < n; i++) {
		const WS_REQUEST_SECURITY_TOKEN_PROPERTY *p = &props[i];
		int id = (int)p->id;
		if (id <= 0 || id >= N_RST_PROPS)
			return err_set(error, E_INVALIDARG, "WsRequestSecurityToken: unknown property id %d (property %u)", id, i);
		if (pp->seen[id])
			return bad_prop(error, id, " is given twice");
		pp->seen[id] = true;
		if (!p->value)
			return bad_prop(error, id, ": value is NULL");
		switch (p->id) {
		case WS_REQUEST_SECURITY_TOKEN_PROPERTY_APPLIES_TO: {
			if (p->valueSize != sizeof(WS_ENDPOINT_ADDRESS))
				return bad_prop(error, id, ": valueSize must be sizeof(WS_ENDPOINT_ADDRESS)");
			const WS_ENDPOINT_ADDRESS *a = p->value;
			if (a->url.length == 0 || !a->url.chars)
				return bad_prop(error, id, ": the address URL is empty");
			if (a->url.length > IPC_MAX_SHORT)
				return bad_prop(error, id, ": the address URL is too long");
			if (a->headers || a->extensions)
				return bad_prop(error, id, ": %s are not supported", "reference parameters (headers, extensions)");
			pp->applies_to = a;
			break;
		}
		case WS_REQUEST_SECURITY_TOKEN_PROPERTY_TRUST_VERSION:
			hr = u32_prop(p, WS_TRUST_VERSION_FEBRUARY_2005, WS_TRUST_VERSION_1_3, &pp->u32[id], error);
			break;
		case WS_REQUEST_SECURITY_TOKEN_PROPERTY_SECURE_CONVERSATION_VERSION:
			hr = u32_prop(p, WS_SECURE_CONVERSATION_VERSION_FEBRUARY_2005, WS_SECURE_CONVERSATION_VERSION_1_3,
			              &pp->u32[id], error);
			break;
		case WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_TYPE: {
			if (p->valueSize != sizeof(WS_XML_STRING))
				return bad_prop(error, id, ": valueSize must be sizeof(WS_XML_STRING)");
			const WS_XML_STRING *s = p->value;
			if (s->length == 0 || !s->bytes)
				return bad_prop(error, id, ": the token type URI is empty");
			if (s->length > IPC_MAX_SHORT || memchr(s->bytes, 0, s->length))
				return bad_prop(error, id, ": the token type URI is too long or contains NUL");
			pp->token_type = s;
			break;
		}
		case WS_REQUEST_SECURITY_TOKEN_PROPERTY_REQUEST_ACTION:
			hr = u32_prop(p, WS_REQUEST_SECURITY_TOKEN_ACTION_ISSUE, WS_REQUEST_SECURITY_TOKEN_ACTION_RENEW_CONTEXT,
			              &pp->u32[id], error);
			break;
		case WS_REQUEST_SECURITY_TOKEN_PROPERTY_EXISTING_TOKEN:
			if (p->valueSize != sizeof(WS_SECURITY_TOKEN *) || !*(WS_SECURITY_TOKEN *const *)p->value)
				return bad_prop(error, id, ": value must point to a non-NULL WS_SECURITY_TOKEN*");
			pp->existing = *(WS_SECURITY_TOKEN *const *)p->value;
			break;
		case WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_TYPE:
			/* ASYMMETRIC (3) is refused by Windows here; wstrust accepts it as
			 * an extension (PublicKey key type). */
			hr = u32_prop(p, WS_SECURITY_KEY_TYPE_NONE, WS_SECURITY_KEY_TYPE_ASYMMETRIC, &pp->u32[id], error);
			break;
		case WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_SIZE:
			hr = u32_prop(p, 1, 16384, &pp->u32[id], error);
			if (SUCCEEDED(hr) && pp->u32[id] % 8)
				return bad_prop(error, id, ": the key size must be a whole number of bytes (a multiple of 8 bits)");
			break;
		case WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_ENTROPY:
			hr = u32_prop(p, WS_SECURITY_KEY_ENTROPY_MODE_CLIENT_ONLY, WS_SECURITY_KEY_ENTROPY_MODE_COMBINED,
			              &pp->u32[id], error);
			break;
		case WS_REQUEST_SECURITY_TOKEN_PROPERTY_LOCAL_REQUEST_PARAMETERS:
		case WS_REQUEST_SECURITY_TOKEN_PROPERTY_SERVICE_REQUEST_PARAMETERS: {
			if (p->valueSize != sizeof(WS_XML_BUFFER *) || !*(WS_XML_BUFFER *const *)p->value)
				return bad_prop(error, id, ": value must point to a non-NULL WS_XML_BUFFER*");
			const WS_XML_BUFFER *b = *(WS_XML_BUFFER *const *)p->value;
			if (b->len > (1u << 20))
				return bad_prop(error, id, ": the XML is larger than 1 MiB");
			if (p->id == WS_REQUEST_SECURITY_TOKEN_PROPERTY_LOCAL_REQUEST_PARAMETERS)
				pp->local_params = b;
			else
				pp->service_params = b;
			break;
		}
		case WS_REQUEST_SECURITY_TOKEN_PROPERTY_MESSAGE_PROPERTIES:
			hr = parse_message_properties(p, pp, error);
			break;
		case WS_REQUEST_SECURITY_TOKEN_PROPERTY_BEARER_KEY_TYPE_VERSION:
			hr = u32_prop(p, WS_SECURITY_BEARER_KEY_TYPE_VERSION_1_3_ORIGINAL_SPECIFICATION,
			              WS_SECURITY_BEARER_KEY_TYPE_VERSION_1_3_ERRATA_01, &pp->u32[id], error);
			break;
		}
		if (FAILED(hr))
			return hr;
	}

	/* Contradictions, before anything is sent. */
	enum { KT = WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_TYPE,
	       KS = WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_SIZE,
	       KE = WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_ENTROPY,
	       RA = WS_REQUEST_SECURITY_TOKEN_PROPERTY_REQUEST_ACTION,
	       ET = WS_REQUEST_SECURITY_TOKEN_PROPERTY_EXISTING_TOKEN };
	bool bearer = pp->seen[KT] && pp->u32[KT] == WS_SECURITY_KEY_TYPE_NONE;
	bool asym = pp->seen[KT] && pp->u32[KT] == WS_SECURITY_KEY_TYPE_ASYMMETRIC;
	if (pp->seen[KS] && (bearer || asym))
		return bad_prop(error, KS, " is given with a %s key type (a key size applies to symmetric keys only)",
		                bearer ? "bearer (WS_SECURITY_KEY_TYPE_NONE)" : "asymmetric");
	if (pp->seen[KE] && (bearer || asym))
		return bad_prop(error, KE, " is given with a %s key type (entropy applies to symmetric keys only)",
		                bearer ? "bearer (WS_SECURITY_KEY_TYPE_NONE)" : "asymmetric");
	bool renew = pp->seen[RA] && pp->u32[RA] == WS_REQUEST_SECURITY_TOKEN_ACTION_RENEW_CONTEXT;
	if (pp->seen[ET] && !renew)
		return bad_prop(error, ET, " is given without %s", "REQUEST_ACTION = WS_REQUEST_SECURITY_TOKEN_ACTION_RENEW_CONTEXT");
	if (renew && !pp->seen[ET])
		return bad_prop(error, RA, ": %s needs WS_REQUEST_SECURITY_TOKEN_PROPERTY_EXISTING_TOKEN",
		                "WS_REQUEST_SECURITY_TOKEN_ACTION_RENEW_CONTEXT");
	return S_OK;
}

/* Build the IPC_REQ_TOKEN frame (fully: nothing of the caller's memory is
 * read after this). */
static HRESULT build_request(WS_CHANNEL *ch, const struct parsed_props *pp, struct ipc_builder *b,
                             struct req_expect *exp, WS_ERROR *error)
{
	ipc_begin(b, IPC_REQ_TOKEN);
	if (ch->profile)
		ipc_put_str(b, T_PROFILE, ch->profile);
	else
		ipc_put_str(b, T_ENDPOINT, ch->url);
	if (ch->embedded)
		ipc_put_u32(b, T_EMBEDDED, 1);

	if (pp->applies_to) {
		char *a = utf16_to_utf8(pp->applies_to->url.chars, pp->applies_to->url.length);
		if (!a) {
			ipc_builder_free(b);
			return errno == ENOMEM ? err_set(error, E_OUTOFMEMORY, "out of memory")
			                       : err_set(error, E_INVALIDARG,
			                                 "WS_REQUEST_SECURITY_TOKEN_PROPERTY_APPLIES_TO: the URL is not valid UTF-16 or contains NUL");
		}
		ipc_put_str(b, T_APPLIES_TO, a);
		free(a);
	}

	enum { TV = WS_REQUEST_SECURITY_TOKEN_PROPERTY_TRUST_VERSION };
	if (pp->seen[TV])
		ipc_put_u32(b, T_TRUST_VERSION, pp->u32[TV]);
	else if (!ch->profile)
		/* Windows' default.  A channel opened by profile name takes the
		 * profile's version instead. */
		ipc_put_u32(b, T_TRUST_VERSION, WS_TRUST_VERSION_FEBRUARY_2005);

	if (pp->token_type) {
		char *t = strndup((const char *)pp->token_type->bytes, pp->token_type->length);
		if (!t) {
			ipc_builder_free(b);
			return err_set(error, E_OUTOFMEMORY, "out of memory");
		}
		ipc_put_str(b, T_TOKEN_TYPE, t);
		free(t);
	}

	static const struct { int prop; uint16_t tag; } u32s[] = {
		{ WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_TYPE, T_KEY_TYPE },
		{ WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_SIZE, T_KEY_SIZE },
		{ WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_ENTROPY, T_ENTROPY_MODE },
		{ WS_REQUEST_SECURITY_TOKEN_PROPERTY_REQUEST_ACTION, T_REQUEST_ACTION },
		{ WS_REQUEST_SECURITY_TOKEN_PROPERTY_SECURE_CONVERSATION_VERSION, T_SC_VERSION },
		{ WS_REQUEST_SECURITY_TOKEN_PROPERTY_BEARER_KEY_TYPE_VERSION, T_BEARER_VERSION },
	};
	for (size_t i = 0; i < sizeof(u32s) / sizeof(u32s[0]); i++)
		if (pp->seen[u32s[i].prop])
			ipc_put_u32(b, u32s[i].tag, pp->u32[u32s[i].prop]);
	exp->key_type = pp->seen[WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_TYPE]
	                    ? pp->u32[WS_REQUEST_SECURITY_TOKEN_PROPERTY_ISSUED_TOKEN_KEY_TYPE] : 0;

	if (pp->local_params)
		ipc_put_bytes(b, T_LOCAL_PARAMS, pp->local_params->bytes, pp->local_params->len);
	if (pp->service_params)
		ipc_put_bytes(b, T_SERVICE_PARAMS, pp->service_params->bytes, pp->service_params->len);
	if (pp->existing) {
		const uint8_t *x;
		size_t xl;
		token_xml(pp->existing, &x, &xl);
		ipc_put_bytes(b, T_EXISTING_TOKEN, x, xl);
	}
	uint32_t max_reply = pp->max_reply ? pp->max_reply : ch->max_reply;
	if (max_reply)
		ipc_put_u32(b, T_MAX_REPLY, max_reply);
	/* Only a deadline the caller chose is passed on: the broker's own
	 * default applies otherwise.  The broker gets a little less time than
	 * we wait, so its precise error arrives before our own timeout. */
	if (ch->timeout_set && ch->timeouts_enabled)
		ipc_put_u32(b, T_TIMEOUT_MS, ch->timeout_ms - ch->timeout_ms / 10);

	if (ipc_finish(b) < 0) {
		ipc_builder_free(b);
		return err_set(error, E_INVALIDARG, "the request is too large to send to the broker");
	}
	return S_OK;
}

/* Connect to the broker (non-blocking; a full backlog is retried until the
 * deadline or WsAbortChannel).  Returns the fd or -1 with the HRESULT in *hr. */
static int connect_broker(WS_CHANNEL *ch, const char *path, int64_t deadline, WS_ERROR *error, HRESULT *hr)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		*hr = err_set(error, WS_E_ENDPOINT_UNREACHABLE, "broker socket path is too long: %s", path);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		*hr = err_set(error, WS_E_ENDPOINT_UNREACHABLE, "cannot create a socket: %s", strerror(errno));
		return -1;
	}
	for (;;) {
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		int e = errno;
		if (e == EINTR)
			continue;
		if (e == EAGAIN && (!deadline || ipc_now_ms() < deadline)) {
			lock(ch);
			bool aborted = ch->aborted;
			unlock(ch);
			if (aborted) {
				/* perform() reports it. */
				close(fd);
				*hr = WS_E_OPERATION_ABORTED;
				return -1;
			}
			struct timespec ts = { 0, 10 * 1000 * 1000 };
			nanosleep(&ts, NULL);
			continue;
		}
		close(fd);
		err_set_original(error, (HRESULT)e);
		if (e == EAGAIN) {
			*hr = err_set(error, WS_E_OPERATION_TIMED_OUT, "the wstrust broker at %s is too busy to accept a connection",
			              path);
		} else if (e == ENOENT || e == ECONNREFUSED) {
			char *s[2];
			char a[600], b2[300];
			snprintf(a, sizeof(a), "cannot connect to the wstrust broker at %s: %s", path, strerror(e));
			snprintf(b2, sizeof(b2), "is wstrustd running? (WSTRUST_SOCKET selects another socket)");
			s[0] = a;
			s[1] = b2;
			*hr = err_set_list(error, WS_E_ENDPOINT_UNREACHABLE, s, 2);
		} else {
			*hr = err_set(error, WS_E_ENDPOINT_UNREACHABLE, "cannot connect to the wstrust broker at %s: %s", path,
			              strerror(e));
		}
		return -1;
	}
}

/* A kept connection the broker closed while idle reads as EOF: drop it and
 * connect again.  No request is outstanding, so anything readable is EOF or
 * garbage. */
static bool connection_stale(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, 0) != 0;
}

struct outcome {
	HRESULT hr;
	bool faulted;
	bool conn_ok;      /* the broker answered in protocol: the connection is usable */
	WS_SECURITY_TOKEN *token;
};

__attribute__((format(printf, 3, 4)))
static struct outcome fail_closed(WS_ERROR *error, HRESULT hr, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	struct outcome o = { .hr = err_set(error, hr, "%s", msg), .faulted = true };
	return o;
}

static struct outcome handle_error_answer(const struct ipc_msg *m, WS_ERROR *error)
{
	uint32_t hr32 = 0, faulted = 0;
	ipc_get_u32(m, T_HRESULT, &hr32);
	if (ipc_has(m, T_CHANNEL_FAULTED) && (!ipc_get_u32(m, T_CHANNEL_FAULTED, &faulted) || faulted > 1))
		return fail_closed(error, WS_E_INVALID_FORMAT, "the broker's answer is invalid: %s", "T_CHANNEL_FAULTED is not 0 or 1");
	HRESULT hr = (HRESULT)hr32;
	if (SUCCEEDED(hr))
		return fail_closed(error, WS_E_INVALID_FORMAT, "the broker's answer is invalid: %s",
		                   "an error answer carries a success HRESULT");
	char *strings[64];
	unsigned n = 0, pos = 0;
	const uint8_t *p;
	size_t len;
	while (n < 64 && ipc_next(m, T_ERROR_STRING, &pos, &p, &len)) {
		strings[n] = strndup((const char *)p, len);
		if (!strings[n])
			break;
		n++;
	}
	err_set_list(error, hr, strings, n);
	for (unsigned i = 0; i < n; i++)
		free(strings[i]);
	struct outcome o = { .hr = hr, .faulted = faulted == 1, .conn_ok = true };
	return o;
}

static struct outcome handle_token_answer(const struct ipc_msg *m, const struct req_expect *exp, WS_ERROR *error)
{
	struct token_fields f = { 0 };
	uint32_t withheld = 0;
	if (!ipc_get_bytes(m, T_TOKEN_XML, &f.xml, &f.xml_len) || f.xml_len == 0)
		return fail_closed(error, WS_E_INVALID_FORMAT, "the broker's answer is invalid: %s", "the token XML is empty");
	if (!ipc_get_u32(m, T_KEY_TYPE_OUT, &f.key_type) || f.key_type < WS_SECURITY_KEY_TYPE_NONE ||
	    f.key_type > WS_SECURITY_KEY_TYPE_ASYMMETRIC)
		return fail_closed(error, WS_E_INVALID_FORMAT, "the broker's answer is invalid: %s", "unknown key type");
	if (exp->key_type && f.key_type != exp->key_type)
		return fail_closed(error, WS_E_INVALID_FORMAT, "the broker's answer is invalid: %s",
		                   "the token's key type is not the one requested");
	ipc_get_u64(m, T_VALID_FROM, &f.valid_from);
	ipc_get_u64(m, T_VALID_TILL, &f.valid_till);
	if (f.valid_from && f.valid_till && f.valid_from > f.valid_till)
		return fail_closed(error, WS_E_INVALID_FORMAT, "the broker's answer is invalid: %s",
		                   "the token's validity ends before it starts");
	if (ipc_has(m, T_ATTACHED_REF))
		ipc_get_bytes(m, T_ATTACHED_REF, &f.attached, &f.attached_len);
	if (ipc_has(m, T_UNATTACHED_REF))
		ipc_get_bytes(m, T_UNATTACHED_REF, &f.unattached, &f.unattached_len);
	if (ipc_has(m, T_PROOF_WITHHELD) && (!ipc_get_u32(m, T_PROOF_WITHHELD, &withheld) || withheld > 1))
		return fail_closed(error, WS_E_INVALID_FORMAT, "the broker's answer is invalid: %s",
		                   "T_PROOF_WITHHELD is not 0 or 1");
	f.proof_withheld = withheld == 1;
	if (ipc_has(m, T_PROOF_KEY)) {
		ipc_get_bytes(m, T_PROOF_KEY, &f.proof, &f.proof_len);
		if (f.proof_len == 0 || f.key_type != WS_SECURITY_KEY_TYPE_SYMMETRIC || f.proof_withheld)
			return fail_closed(error, WS_E_INVALID_FORMAT, "the broker's answer is invalid: %s",
			                   "a proof key that does not fit the token's key type");
	}
	char *tt = ipc_has(m, T_TOKEN_TYPE_URI) ? ipc_dup_str(m, T_TOKEN_TYPE_URI) : NULL;
	if (ipc_has(m, T_TOKEN_TYPE_URI) && !tt)
		return fail_closed(error, E_OUTOFMEMORY, "out of memory");
	f.token_type = tt;
	struct outcome o = { .hr = S_OK, .conn_ok = true };
	o.token = token_new(&f);
	free(tt);
	if (!o.token) {
		o.hr = err_set(error, E_OUTOFMEMORY, "out of memory storing the token");
		o.faulted = false;
	}
	return o;
}

/* Send the frame and read the answer.  Runs on the caller's thread or on the
 * library thread; touches the channel's fd only (state is set by the
 * caller under the lock). */
static struct outcome exchange(WS_CHANNEL *ch, const struct ipc_builder *req, const struct req_expect *exp,
                               WS_ERROR *error)
{
	int64_t deadline = ch->timeouts_enabled ? ipc_now_ms() + ch->timeout_ms : 0;

	if (ch->embedded) {
		/* The private broker answers only what was asked: anything
		 * readable now means it exited. */
		if (ch->fd < 0 || connection_stale(ch->fd))
			return fail_closed(error, WS_E_ENDPOINT_DISCONNECTED,
			                   "the private wstrust broker of this channel has exited; create a new channel");
	} else if (ch->fd >= 0 && connection_stale(ch->fd)) {
		lock(ch);
		disconnect(ch);
		unlock(ch);
	}
	if (ch->fd < 0) {
		HRESULT hr;
		int fd = connect_broker(ch, ch->socket_path, deadline, error, &hr);
		if (fd < 0) {
			struct outcome o = { .hr = hr, .faulted = true };
			return o;
		}
		lock(ch);
		ch->fd = fd;
		bool aborted = ch->aborted;
		unlock(ch);
		if (aborted) {
			struct outcome o = { .hr = WS_E_OPERATION_ABORTED, .faulted = true };
			return o;
		}
	}

	if (ipc_write_frame(ch->fd, req->buf, req->len, deadline) < 0) {
		int e = errno;
		err_set_original(error, (HRESULT)e);
		if (e == ETIMEDOUT)
			return fail_closed(error, WS_E_OPERATION_TIMED_OUT,
			                   "the wstrust broker did not take the request within the channel timeout");
		return fail_closed(error, WS_E_ENDPOINT_DISCONNECTED, "sending the request to the wstrust broker failed: %s",
		                   strerror(e));
	}

	uint8_t *buf = NULL;
	size_t len = 0;
	if (ipc_read_frame(ch->fd, &buf, &len, IPC_MAX_FRAME, deadline) < 0) {
		int e = errno;
		err_set_original(error, (HRESULT)e);
		if (e == ETIMEDOUT) {
			char t[32];
			snprintf(t, sizeof(t), "%u", ch->timeout_ms);
			return fail_closed(error, WS_E_OPERATION_TIMED_OUT,
			                   "the wstrust broker did not answer within the channel timeout (%s ms)", t);
		}
		if (e == ECONNRESET || e == EPIPE)
			return fail_closed(error, WS_E_ENDPOINT_DISCONNECTED,
			                   "the wstrust broker closed the connection without answering");
		if (e == EMSGSIZE)
			return fail_closed(error, WS_E_INVALID_FORMAT, "the broker's answer is invalid: %s",
			                   "the frame length is out of bounds");
		if (e == EPROTO)
			return fail_closed(error, WS_E_INVALID_FORMAT, "the broker's answer is invalid: %s",
			                   "the connection closed in the middle of a frame");
		return fail_closed(error, WS_E_ENDPOINT_DISCONNECTED, "reading the broker's answer failed: %s", strerror(e));
	}

	struct ipc_msg *m = malloc(sizeof(*m));
	if (!m) {
		free(buf);
		struct outcome o = { .hr = err_set(error, E_OUTOFMEMORY, "out of memory"), .faulted = true };
		return o;
	}
	char why[256] = "";
	struct outcome o;
	if (ipc_decode(buf, len, m, why, sizeof(why)) < 0)
		o = fail_closed(error, WS_E_INVALID_FORMAT, "the broker's answer could not be decoded: %s", why);
	else if (m->type == IPC_ANS_ERROR)
		o = handle_error_answer(m, error);
	else if (m->type == IPC_ANS_TOKEN)
		o = handle_token_answer(m, exp, error);
	else
		o = fail_closed(error, WS_E_INVALID_FORMAT, "the broker's answer is invalid: %s", "unexpected message type");
	/* The answer may hold a proof key. */
	explicit_bzero(buf, len);
	free(buf);
	free(m);
	return o;
}

/* Runs the exchange and applies its outcome to the channel and the caller's
 * out parameter. */
static HRESULT perform(WS_CHANNEL *ch, struct ipc_builder *req, const struct req_expect *exp,
                       WS_SECURITY_TOKEN **token, WS_ERROR *error)
{
	struct outcome o = exchange(ch, req, exp, error);
	ipc_builder_free(req);

	lock(ch);
	bool aborted = ch->aborted;
	if (aborted && o.token) {
		/* The answer raced the abort: the call still fails, as aborted. */
		WsFreeSecurityToken(o.token);
		o.token = NULL;
	}
	if (aborted) {
		o.hr = err_set(error, WS_E_OPERATION_ABORTED, "the request was aborted (WsAbortChannel or WsCloseChannel)");
		o.faulted = true;
	}
	if (o.faulted) {
		if (aborted || !o.conn_ok)
			drop_broker(ch);
		else
			disconnect(ch);
		if (ch->state == WS_CHANNEL_STATE_OPEN)
			ch->state = WS_CHANNEL_STATE_FAULTED;
	}
	ch->pending = false;
	ch->aborted = false;
	pthread_cond_broadcast(&ch->idle);
	unlock(ch);

	if (SUCCEEDED(o.hr) && o.token)
		*token = o.token;
	return o.hr;
}

struct async_call {
	WS_CHANNEL *ch;
	struct ipc_builder req;
	struct req_expect exp;
	WS_SECURITY_TOKEN **token;
	WS_ERROR *error;
	WS_ASYNC_CALLBACK callback;
	void *state;
};

static void *async_main(void *arg)
{
	struct async_call *c = arg;
	HRESULT hr = perform(c->ch, &c->req, &c->exp, c->token, c->error);
	WS_ASYNC_CALLBACK cb = c->callback;
	void *state = c->state;
	free(c);
	/* Nothing of the channel is touched after this: the callback may free it. */
	cb(hr, WS_LONG_CALLBACK, state);
	return NULL;
}

WS_EXPORT HRESULT WINAPI WsRequestSecurityToken(WS_CHANNEL *channel, const WS_REQUEST_SECURITY_TOKEN_PROPERTY *properties,
                                                ULONG propertyCount, WS_SECURITY_TOKEN **token,
                                                const WS_ASYNC_CONTEXT *asyncContext, WS_ERROR *error)
{
	if (!channel || !token)
		return err_set(error, E_INVALIDARG, "WsRequestSecurityToken: channel and token are required");
	if (asyncContext && !asyncContext->callback)
		return err_set(error, E_INVALIDARG, "WsRequestSecurityToken: the async context has no callback");

	lock(channel);
	WS_CHANNEL_STATE s = channel->state;
	bool busy = channel->pending;
	unlock(channel);
	if (s != WS_CHANNEL_STATE_OPEN)
		return err_set(error, WS_E_INVALID_OPERATION,
		               "WsRequestSecurityToken: the channel is %s; it must be OPEN (WsOpenChannel)", state_name(s));
	if (busy)
		return err_set(error, WS_E_INVALID_OPERATION, "WsRequestSecurityToken: a request is already pending on this channel");

	struct parsed_props pp;
	memset(&pp, 0, sizeof(pp));
	HRESULT hr = parse_props(properties, propertyCount, &pp, error);
	if (FAILED(hr))
		return hr;
	struct ipc_builder req = { 0 };
	struct req_expect exp = { 0 };
	hr = build_request(channel, &pp, &req, &exp, error);
	if (FAILED(hr))
		return hr;

	lock(channel);
	if (channel->state != WS_CHANNEL_STATE_OPEN || channel->pending) {
		unlock(channel);
		ipc_builder_free(&req);
		return err_set(error, WS_E_INVALID_OPERATION, "WsRequestSecurityToken: the channel changed state");
	}
	channel->pending = true;
	channel->aborted = false;
	unlock(channel);

	if (!asyncContext)
		return perform(channel, &req, &exp, token, error);

	struct async_call *c = malloc(sizeof(*c));
	if (!c) {
		ipc_builder_free(&req);
		lock(channel);
		channel->pending = false;
		pthread_cond_broadcast(&channel->idle);
		unlock(channel);
		return err_set(error, E_OUTOFMEMORY, "out of memory starting an asynchronous request");
	}
	*c = (struct async_call){ .ch = channel, .req = req, .exp = exp, .token = token, .error = error,
	                          .callback = asyncContext->callback, .state = asyncContext->callbackState };
	/* The previous call's thread is done with the channel (pending was
	 * false); collect it, or let it go if we are running inside it. */
	reap_thread(channel);
	/* Application signal handlers must not run on the library's thread. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	/* Held across creation: the thread takes the lock before it can call
	 * back, so `thread` is recorded before the callback could free the
	 * channel. */
	lock(channel);
	int r = pthread_create(&channel->thread, NULL, async_main, c);
	if (r == 0) {
		channel->thread_valid = true;
	} else {
		channel->pending = false;
		pthread_cond_broadcast(&channel->idle);
	}
	unlock(channel);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		ipc_builder_free(&c->req);
		free(c);
		return err_set(error, E_OUTOFMEMORY, "cannot start a thread for the asynchronous request: %s", strerror(r));
	}
	return WS_S_ASYNC;
}
