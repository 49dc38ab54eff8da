#include "transport.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "broker_config.h"

#include "config.h"   /* build configuration: WSTRUST_VERSION */
#include "ipc.h"

/* TLS sessions and DNS answers are shared between requests so that a busy
 * broker does not pay a full TLS handshake per token (it dominated the
 * broker's CPU: bench/bench_peers.py).  Connections are not: libcurl's
 * shared connection cache is not thread-safe (docs/KNOWN_BUGS "A shared
 * connection cache is not thread-safe"; CURLSHOPT_SHARE: "not supported to
 * share connections between multiple concurrent threads"), so each broker
 * thread keeps its own, in its easy handle below.  curl reuses a
 * connection only for a request with the same host and TLS settings (CA
 * file, pin, verify flags).  It cannot see a client certificate set through
 * the SSL_CTX callback, so requests with one never use the share: each gets
 * its own connection and no other request can ride on it. */
static CURLSH *share;
static pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];

static void share_lock(CURL *h, curl_lock_data d, curl_lock_access a, void *u)
{
	(void)h;
	(void)a;
	(void)u;
	pthread_mutex_lock(&share_mu[d]);
}

static void share_unlock(CURL *h, curl_lock_data d, void *u)
{
	(void)h;
	(void)u;
	pthread_mutex_unlock(&share_mu[d]);
}

/* One easy handle per broker thread, reused (curl_easy_reset) by requests
 * that use the share: re-creating it per request cost a socketpair, signal
 * handler changes and a multi handle every time.  Requests with a client
 * certificate get a fresh handle of their own, freed after the request, so
 * their connection can never serve another request. */
static pthread_key_t handle_key;
static bool handle_key_ok;

static void handle_free(void *h)
{
	curl_easy_cleanup(h);
}

static CURL *handle_get(bool own)
{
	CURL *h = own || !handle_key_ok ? NULL : pthread_getspecific(handle_key);
	if (h) {
		curl_easy_reset(h);
		return h;
	}
	h = curl_easy_init();
	if (h && !own && handle_key_ok && pthread_setspecific(handle_key, h) != 0) {
		curl_easy_cleanup(h);
		h = NULL;
	}
	return h;
}

static void handle_done(CURL *h, bool own)
{
	if (own || !handle_key_ok)
		curl_easy_cleanup(h);
}

int transport_global_init(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -1;
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&share_mu[i], NULL);
	share = curl_share_init();
	if (share && (curl_share_setopt(share, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
	              curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
	              curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK ||
	              curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK)) {
		curl_share_cleanup(share);   /* no sharing: correct, only slower */
		share = NULL;
	}
	handle_key_ok = share && pthread_key_create(&handle_key, handle_free) == 0;
	return 0;
}

struct sink {
	struct secbuf *buf;
	size_t max;
	bool too_large;
};

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct sink *s = userdata;
	size_t n = size * nmemb;
	if (s->buf->len + n > s->max) {
		s->too_large = true;
		return 0;   /* makes curl abort with CURLE_WRITE_ERROR */
	}
	secbuf_append(s->buf, ptr, n);
	return s->buf->failed ? 0 : n;
}

/* Refuse early on an announced Content-Length over the quota. */
static size_t header_cb(char *ptr, size_t size, size_t nitems, void *userdata)
{
	struct sink *s = userdata;
	size_t n = size * nitems;
	static const char cl[] = "content-length:";
	if (n > sizeof cl - 1 && strncasecmp(ptr, cl, sizeof cl - 1) == 0) {
		unsigned long long v = 0;
		const char *p = ptr + sizeof cl - 1;
		while (p < ptr + n && (*p == ' ' || *p == '\t'))
			p++;
		bool digits = false;
		while (p < ptr + n && *p >= '0' && *p <= '9') {
			digits = true;
			if (v > (1ull << 50))
				break;
			v = v * 10 + (unsigned)(*p++ - '0');
		}
		if (digits && v > s->max) {
			s->too_large = true;
			return 0;
		}
	}
	return n;
}

/* A literal IPv4 address in 127/8: "127.evil.example" is a DNS name that
 * can resolve anywhere. */
static bool is_127(const char *host)
{
	struct in_addr a;
	return inet_pton(AF_INET, host, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

static bool host_is_loopback(const char *url)
{
	CURLU *u = curl_url();
	char *host = NULL;
	bool loop = false;
	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
		loop = !strcmp(host, "localhost") || !strcmp(host, "[::1]") || is_127(host);
	curl_free(host);
	curl_url_cleanup(u);
	return loop;
}

/* The profile's client certificate and key go straight from memory into
 * this connection's SSL_CTX: no file is re-read, no PEM copy is made. */
static CURLcode ssl_ctx_cb(CURL *h, void *sslctx, void *userdata)
{
	(void)h;
	const struct profile *p = userdata;
	SSL_CTX *ctx = sslctx;
	if (SSL_CTX_use_certificate(ctx, p->client_cert) != 1 || SSL_CTX_use_PrivateKey(ctx, p->client_key) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1)
		return CURLE_SSL_CERTPROBLEM;
	return CURLE_OK;
}

static bool curl_uses_openssl(void)
{
	const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
	return v && v->ssl_version && strstr(v->ssl_version, "OpenSSL") != NULL;
}

/* "Authorization: Basic base64(user:password)" in secure memory. */
static int basic_header(const struct profile *p, struct secbuf *out)
{
	struct secbuf raw;
	memset(out, 0, sizeof *out);
	secbuf_init(&raw, 0, 0);
	secbuf_puts(&raw, p->username);
	secbuf_puts(&raw, ":");
	secbuf_append(&raw, p->password.data, p->password.len);
	if (raw.failed) {
		secbuf_free(&raw);
		return -1;
	}
	size_t n = sodium_base64_encoded_len(raw.len, sodium_base64_VARIANT_ORIGINAL);
	secbuf_init(out, 32 + n, 0);   /* n counts the NUL */
	secbuf_puts(out, "Authorization: Basic ");
	if (!out->failed && out->cap >= out->len + n) {
		sodium_bin2base64((char *)out->data + out->len, n, raw.data, raw.len, sodium_base64_VARIANT_ORIGINAL);
		out->len += n - 1;
	} else {
		out->failed = true;
	}
	secbuf_free(&raw);
	return out->failed ? -1 : 0;
}

/* Wipe the slist's copies of header lines that carry credentials. */
static void wipe_slist(struct curl_slist *l)
{
	for (; l; l = l->next)
		if (l->data && !strncasecmp(l->data, "Authorization:", 14))
			sodium_memzero(l->data, strlen(l->data));
}

enum transport_status transport_post(const struct http_request *rq, struct http_reply *rp, char *err,
                                     size_t errlen)
{
	memset(rp, 0, sizeof *rp);
	bool is_http = strncasecmp(rq->url, "http://", 7) == 0;
	if (is_http && !(rq->allow_insecure_http && host_is_loopback(rq->url))) {
		snprintf(err, errlen, "refusing plain http to %s (https only; allow_insecure_http permits loopback only)",
		         rq->url);
		return TRANSPORT_BAD_URL;
	}
	int64_t left = rq->deadline_ms - ipc_now_ms();
	if (left <= 0) {
		snprintf(err, errlen, "request deadline passed before contacting the STS");
		return TRANSPORT_TIMEOUT;
	}

	const struct profile *p = rq->profile;
	bool client_cert = p && p->client_cert && p->client_key && !is_http;
	bool own = client_cert || !share;   /* see handle_get */
	CURL *h = handle_get(own);
	if (!h) {
		snprintf(err, errlen, "out of memory (curl)");
		return TRANSPORT_FAILED;
	}
	secbuf_init(&rp->body, 0, 0);
	struct sink sink = { .buf = &rp->body, .max = rq->max_reply };
	char curl_err[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL;
	char line[512];
	if (rq->soap_version == 12) {
		snprintf(line, sizeof line, "Content-Type: application/soap+xml; charset=utf-8; action=\"%s\"", rq->action);
		hdrs = curl_slist_append(hdrs, line);
	} else {
		hdrs = curl_slist_append(hdrs, "Content-Type: text/xml; charset=utf-8");
		snprintf(line, sizeof line, "SOAPAction: \"%s\"", rq->action);
		hdrs = curl_slist_append(hdrs, line);
	}
	/* No "Expect: 100-continue" round trip. */
	hdrs = curl_slist_append(hdrs, "Expect:");
	if (p && p->auth == AUTH_BASIC) {
		/* Preemptive, only over TLS (or the loopback test exception above).
		 * curl copies header lines; those copies are wiped below. */
		struct secbuf auth;
		if (basic_header(p, &auth) != 0) {
			secbuf_free(&auth);
			curl_slist_free_all(hdrs);
			handle_done(h, own);
			http_reply_free(rp);
			snprintf(err, errlen, "out of secure memory (HTTP Basic credentials)");
			return TRANSPORT_FAILED;
		}
		hdrs = curl_slist_append(hdrs, (const char *)auth.data);
		secbuf_free(&auth);
	}
	if (!hdrs) {
		handle_done(h, own);
		http_reply_free(rp);
		snprintf(err, errlen, "out of memory (HTTP headers)");
		return TRANSPORT_FAILED;
	}
	if (client_cert && !curl_uses_openssl()) {
		wipe_slist(hdrs);
		curl_slist_free_all(hdrs);
		handle_done(h, own);
		http_reply_free(rp);
		snprintf(err, errlen, "profile %s: a TLS client certificate needs libcurl built with OpenSSL", p->name);
		return TRANSPORT_FAILED;
	}

	CURLcode setrc = CURLE_OK;
#define SET(opt, val) do { if (setrc == CURLE_OK) setrc = curl_easy_setopt(h, opt, val); } while (0)
	SET(CURLOPT_URL, rq->url);
	if (!own)
		SET(CURLOPT_SHARE, share);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROTOCOLS_STR, is_http ? "http" : "https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_PROXY, rq->proxy ? rq->proxy : "");
	SET(CURLOPT_POST, 1L);
	SET(CURLOPT_POSTFIELDS, (const char *)rq->body);
	SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
	SET(CURLOPT_HTTPHEADER, hdrs);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (p && p->pin_sha256 && !is_http)
		SET(CURLOPT_PINNEDPUBLICKEY, p->pin_sha256);
	if (client_cert) {
		SET(CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
		SET(CURLOPT_SSL_CTX_DATA, (void *)p);
	}
	if (rq->ca_file) {
		SET(CURLOPT_CAINFO, rq->ca_file);
		SET(CURLOPT_CAPATH, NULL);
	}
	SET(CURLOPT_TIMEOUT_MS, (long)left);
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long)left);
	SET(CURLOPT_WRITEFUNCTION, write_cb);
	SET(CURLOPT_WRITEDATA, &sink);
	SET(CURLOPT_HEADERFUNCTION, header_cb);
	SET(CURLOPT_HEADERDATA, &sink);
	SET(CURLOPT_ERRORBUFFER, curl_err);
	SET(CURLOPT_USERAGENT, "wstrustd/" WSTRUST_VERSION);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)rq->max_reply);
	SET(CURLOPT_ACCEPT_ENCODING, NULL);   /* no decompression bombs */
#undef SET

	enum transport_status st = TRANSPORT_OK;
	CURLcode rc = setrc != CURLE_OK ? setrc : curl_easy_perform(h);
	const char *detail = curl_err[0] ? curl_err : curl_easy_strerror(rc);
	if (setrc != CURLE_OK) {
		snprintf(err, errlen, "could not set up the HTTP request: %s", curl_easy_strerror(setrc));
		st = TRANSPORT_FAILED;
	} else if (sink.too_large || rc == CURLE_FILESIZE_EXCEEDED) {
		snprintf(err, errlen, "reply from STS exceeds %zu bytes", rq->max_reply);
		st = TRANSPORT_TOO_LARGE;
	} else if (rp->body.failed) {
		snprintf(err, errlen, "out of secure memory for the STS reply");
		st = TRANSPORT_FAILED;
	} else {
		switch (rc) {
		case CURLE_OK:
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &rp->status);
			break;
		case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
			snprintf(err, errlen, "TLS: the STS's public key does not match pin_sha256 of profile %s "
			         "(certificate replaced, or a man in the middle); nothing was sent: %s",
			         p ? p->name : "?", detail);
			st = TRANSPORT_TLS;
			break;
		case CURLE_PEER_FAILED_VERIFICATION:
			/* curl says which: "SSL: no alternative certificate subject name
			 * matches target host name ..." or a chain problem. */
			snprintf(err, errlen, "TLS: %s: %s",
			         strstr(detail, "name") ? "host name mismatch" : "server certificate not trusted", detail);
			st = TRANSPORT_TLS;
			break;
#if LIBCURL_VERSION_NUM < 0x073e00
		case CURLE_SSL_CACERT:
#endif
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_SSL_CERTPROBLEM:
		case CURLE_SSL_CIPHER:
		case CURLE_SSL_ISSUER_ERROR:
		case CURLE_SSL_INVALIDCERTSTATUS:
			snprintf(err, errlen, "TLS: %s: %s",
			         rc == CURLE_SSL_CACERT_BADFILE ? "cannot use ca_file" :
			         rc == CURLE_SSL_CERTPROBLEM ? "cannot use the profile's client certificate" :
			         client_cert && strstr(detail, "alert") ? "the STS rejected the client certificate" :
			         strstr(detail, "certificate") ? "server certificate not trusted" : "handshake failed",
			         detail);
			st = TRANSPORT_TLS;
			break;
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_RESOLVE_PROXY:
		case CURLE_COULDNT_CONNECT:
			snprintf(err, errlen, "STS unreachable: %s", detail);
			st = TRANSPORT_UNREACHABLE;
			break;
		case CURLE_OPERATION_TIMEDOUT:
			snprintf(err, errlen, "STS did not answer in time: %s", detail);
			st = TRANSPORT_TIMEOUT;
			break;
		case CURLE_UNSUPPORTED_PROTOCOL:
		case CURLE_URL_MALFORMAT:
			snprintf(err, errlen, "cannot use endpoint URL: %s", detail);
			st = TRANSPORT_BAD_URL;
			break;
		case CURLE_RECV_ERROR:
		case CURLE_SEND_ERROR:
		case CURLE_GOT_NOTHING:
			/* TLS 1.3: a refused client certificate shows after the
			 * handshake, as an alert or, racing it, a reset connection. */
			if (client_cert && strstr(detail, "alert")) {
				snprintf(err, errlen, "TLS: the STS rejected the client certificate: %s", detail);
				st = TRANSPORT_TLS;
			} else if (client_cert && rp->body.len == 0) {
				snprintf(err, errlen, "TLS: the STS dropped the connection after the handshake, so it most likely "
				         "rejected the client certificate (%s)", detail);
				st = TRANSPORT_TLS;
			} else {
				snprintf(err, errlen, "HTTP exchange with the STS failed (curl error %d): %s", (int)rc, detail);
				st = TRANSPORT_FAILED;
			}
			break;
		default:
			snprintf(err, errlen, "HTTP exchange with the STS failed (curl error %d): %s", (int)rc, detail);
			st = TRANSPORT_FAILED;
		}
	}
	wipe_slist(hdrs);
	curl_slist_free_all(hdrs);
	handle_done(h, own);
	if (st != TRANSPORT_OK)
		http_reply_free(rp);
	return st;
}

void http_reply_free(struct http_reply *rp)
{
	secbuf_free(&rp->body);
	rp->status = 0;
}
