/* server: the client socket, the accept loop, one thread per client.
 *
 * The live configuration (with its worker pools) is a refcounted
 * generation: a request holds a reference for its whole duration, SIGHUP
 * swaps in a new generation, and the old one (secrets, pools) is freed
 * when its last request ends. */
#ifndef WSTRUST_BROKER_SERVER_H
#define WSTRUST_BROKER_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

#include "broker_config.h"

#define CLIENT_IDLE_MS 60000      /* a connection idle this long is closed */
#define CLIENT_WRITE_MS 10000     /* to write one answer */

struct generation {
	struct broker_config *cfg;
	unsigned refs;
};

struct server {
	pthread_mutex_t lock;
	struct generation *gen;     /* current; guarded by lock */
	uid_t uid;                  /* the broker's own uid (policy default) */
	int listen_fd;
	char *socket_path;
	atomic_uint nclients;
	bool embedded;              /* wstrustd --embedded: one caller, its own profile */
};

/* Unlink a stale socket (refusing a live one), bind, chmod 0666, listen.
 * Returns the fd, or -1 with a message. */
int server_listen(const char *path, char *err, size_t errlen);

/* Make a generation from a loaded config: start one worker pool per profile.
 * On failure frees cfg and returns NULL with a message. */
struct generation *generation_new(struct broker_config *cfg, char *err, size_t errlen);
struct generation *server_acquire(struct server *s);
void server_release(struct server *s, struct generation *g);
/* Install g as current; the previous generation is released. */
void server_swap(struct server *s, struct generation *g);

/* Accept one pending connection and start its thread (or refuse it when
 * max_clients are connected). */
void server_accept(struct server *s);

/* Serve token requests on one connection until it closes (or, in daemon
 * mode, idles for CLIENT_IDLE_MS).  A daemon ignores T_EMBEDDED (a client
 * cannot claim to own the broker); an embedded server has no idle limit
 * (the application owns the connection). */
void server_serve_fd(struct server *s, int fd, const struct policy_peer *peer);

#endif
