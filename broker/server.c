#include "server.h"

#include "federation.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "embedded.h"
#include "federation.h"
#include "hresult.h"
#include "ipc.h"
#include "log.h"
#include "request.h"
#include "workers.h"

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif

int server_listen(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof sa.sun_path) {
		snprintf(err, errlen, "socket path %s is too long", path);
		return -1;
	}
	strcpy(sa.sun_path, path);

	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "socket path %s exists and is not a socket: remove it or choose another path", path);
			return -1;
		}
		/* A socket file: live (another broker) or stale (a crash)? */
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0) {
			close(probe);
			snprintf(err, errlen, "socket %s is in use by a running broker", path);
			return -1;
		}
		if (probe >= 0)
			close(probe);
		if (unlink(path) != 0) {
			snprintf(err, errlen, "cannot remove stale socket %s: %s", path, strerror(errno));
			return -1;
		}
	}

	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		snprintf(err, errlen, "cannot bind %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	/* Anyone may connect: access is decided per request by policy on the
	 * kernel-attested peer credentials, not by file modes. */
	if (chmod(sa.sun_path, 0666) != 0 || listen(fd, 64) != 0) {
		int e = errno;
		snprintf(err, errlen, "cannot set up %s: %s", sa.sun_path, strerror(e));
		close(fd);
		unlink(sa.sun_path);
		return -1;
	}
	return fd;
}

static void free_generation(struct generation *g)
{
	for (size_t i = 0; i < g->cfg->nprofiles; i++)
		if (g->cfg->profiles[i].pool)
			worker_pool_free(g->cfg->profiles[i].pool);
	config_free(g->cfg);
	free(g);
}

struct generation *generation_new(struct broker_config *cfg, char *err, size_t errlen)
{
	struct generation *g = calloc(1, sizeof *g);
	if (!g) {
		snprintf(err, errlen, "out of memory");
		config_free(cfg);
		return NULL;
	}
	g->cfg = cfg;
	g->refs = 1;
	struct worker_cfg wc = {
		.worker_path = cfg->worker_path,
		.worker_user = cfg->worker_user,
		.max_replies = cfg->worker_max_replies,
		.pool_size = cfg->worker_pool,
		.max_total = cfg->worker_max_total,
		.max_age_s = cfg->worker_max_age,
		.timeout_ms = cfg->worker_timeout_ms,
		.cpu_s = cfg->worker_cpu_seconds,
		.mem_mb = cfg->worker_memory_mb,
	};
	for (size_t i = 0; i < cfg->nprofiles; i++) {
		cfg->profiles[i].pool = worker_pool_new(&wc, cfg->profiles[i].name);
		if (!cfg->profiles[i].pool) {
			snprintf(err, errlen, "cannot start workers for profile %s (worker %s)", cfg->profiles[i].name,
			         cfg->worker_path);
			free_generation(g);
			return NULL;
		}
	}
	return g;
}

struct generation *server_acquire(struct server *s)
{
	pthread_mutex_lock(&s->lock);
	struct generation *g = s->gen;
	if (g)
		g->refs++;
	pthread_mutex_unlock(&s->lock);
	return g;
}

void server_release(struct server *s, struct generation *g)
{
	if (!g)
		return;
	pthread_mutex_lock(&s->lock);
	bool last = --g->refs == 0;
	pthread_mutex_unlock(&s->lock);
	if (last)
		free_generation(g);
}

void server_swap(struct server *s, struct generation *g)
{
	pthread_mutex_lock(&s->lock);
	struct generation *old = s->gen;
	s->gen = g;
	pthread_mutex_unlock(&s->lock);
	/* Issued tokens obtained under the old config (federation hops) are
	 * wiped now, not when the next federation request happens to look. */
	federation_flush();
	if (old)
		server_release(s, old);
}

struct client {
	struct server *srv;
	int fd;
	struct policy_peer peer;
};

static bool send_answer(struct client *c, struct ipc_builder *ans)
{
	if (ipc_finish(ans) != 0) {
		/* Too big or OOM: say so in a frame that surely fits. */
		answer_error(ans, (uint32_t)E_OUTOFMEMORY, true, "the answer could not be encoded (too large)", NULL);
		if (ipc_finish(ans) != 0)
			return false;
	}
	return ipc_write_frame(c->fd, ans->buf, ans->len, ipc_now_ms() + CLIENT_WRITE_MS) == 0;
}

/* A daemon client cannot claim the embedded caller's rights (T_EMBEDDED):
 * the field is dropped before the request is handled. */
static void strip_embedded(struct ipc_msg *m)
{
	unsigned o = 0;
	for (unsigned i = 0; i < m->nfields; i++)
		if (m->fields[i].tag != T_EMBEDDED)
			m->fields[o++] = m->fields[i];
	m->nfields = o;
}

static void serve(struct client *c)
{
	bool embedded = c->srv->embedded;
	for (;;) {
		uint8_t *buf = NULL;
		size_t len = 0;
		if (ipc_read_frame(c->fd, &buf, &len, IPC_MAX_FRAME, embedded ? 0 : ipc_now_ms() + CLIENT_IDLE_MS) != 0) {
			int e = errno;
			if (e == ETIMEDOUT)
				log_info("client uid=%u pid=%d: idle for %d s, closing", (unsigned)c->peer.uid, (int)c->peer.pid,
				         CLIENT_IDLE_MS / 1000);
			else if (e == EMSGSIZE || e == EPROTO) {
				struct ipc_builder ans = { 0 };
				answer_error(&ans, (uint32_t)E_INVALIDARG, true,
				             e == EMSGSIZE ? "request frame too large" : "malformed request frame", NULL);
				send_answer(c, &ans);
				ipc_builder_free(&ans);
				log_warn("client uid=%u pid=%d: %s, closing", (unsigned)c->peer.uid, (int)c->peer.pid,
				         e == EMSGSIZE ? "frame too large" : "malformed frame");
			}
			free(buf);
			return;
		}
		struct ipc_msg m;
		char derr[256];
		/* The answer may carry a proof key: wiped when freed. */
		struct ipc_builder ans = { .secure = true };
		bool keep = true;
		if (ipc_decode(buf, len, &m, derr, sizeof derr) != 0) {
			char msg[320];
			snprintf(msg, sizeof msg, "malformed request: %s", derr);
			log_warn("client uid=%u pid=%d: %s", (unsigned)c->peer.uid, (int)c->peer.pid, msg);
			answer_error(&ans, (uint32_t)E_INVALIDARG, true, msg, NULL);
			keep = false;
		} else if (m.type != IPC_REQ_TOKEN) {
			answer_error(&ans, (uint32_t)E_INVALIDARG, true, "unexpected message type (expected a token request)",
			             NULL);
			keep = false;
		} else {
			struct generation *g = server_acquire(c->srv);
			if (g && embedded)
				embedded_prepare(g->cfg, &m);   /* one thread: the config is ours */
			else
				strip_embedded(&m);
			if (g)
				request_handle(g->cfg, c->srv->uid, &c->peer, &m, &ans);
			else
				answer_error(&ans, (uint32_t)WS_E_ENDPOINT_UNREACHABLE, true, "the broker is shutting down", NULL);
			server_release(c->srv, g);
		}
		bool sent = send_answer(c, &ans);
		ipc_builder_free(&ans);
		free(buf);
		if (!sent || !keep)
			return;
	}
}

void server_serve_fd(struct server *s, int fd, const struct policy_peer *peer)
{
	struct client c = { .srv = s, .fd = fd, .peer = *peer };
	serve(&c);
}

static void *client_thread(void *arg)
{
	struct client *c = arg;
	serve(c);
	close(c->fd);
	atomic_fetch_sub(&c->srv->nclients, 1);
	free(c);
	return NULL;
}

static bool peer_credentials(int fd, struct policy_peer *p)
{
	struct ucred uc;
	socklen_t l = sizeof uc;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &l) != 0 || l != sizeof uc)
		return false;
	p->uid = uc.uid;
	p->gid = uc.gid;
	p->pid = uc.pid;
	socklen_t gl = sizeof p->groups;
	/* More groups than we keep: the rest cannot widen access, only a
	 * later group rule could miss them (fails closed). */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, p->groups, &gl) == 0)
		p->ngroups = gl / sizeof(gid_t);
	else
		p->ngroups = 0;
	return true;
}

void server_accept(struct server *s)
{
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			log_warn("accept: %s", strerror(errno));
		return;
	}
	struct client *c = calloc(1, sizeof *c);
	if (!c || !peer_credentials(fd, &c->peer)) {
		log_warn("cannot identify a client: %s", c ? strerror(errno) : "out of memory");
		free(c);
		close(fd);
		return;
	}
	c->srv = s;
	c->fd = fd;

	struct generation *g = server_acquire(s);
	unsigned max = g ? g->cfg->max_clients : 0;
	server_release(s, g);
	if (atomic_fetch_add(&s->nclients, 1) >= max) {
		atomic_fetch_sub(&s->nclients, 1);
		log_warn("client uid=%u pid=%d refused: %u clients connected (max_clients)", (unsigned)c->peer.uid,
		         (int)c->peer.pid, max);
		close(fd);
		free(c);
		return;
	}
	log_info("client uid=%u pid=%d", (unsigned)c->peer.uid, (int)c->peer.pid);

	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 1024 * 1024);
	pthread_t t;
	int rc = pthread_create(&t, &attr, client_thread, c);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		log_error("cannot start a client thread: %s", strerror(rc));
		atomic_fetch_sub(&s->nclients, 1);
		close(fd);
		free(c);
	}
}
