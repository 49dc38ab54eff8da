/* wstrustd: the credential-holding broker.
 *
 *   wstrustd --config FILE [--foreground] [--debug]
 *   wstrustd --config FILE --check-config
 *   wstrustd --embedded FD [--debug]     (started by libwstrust: embedded.h)
 *
 * Start-up order: libraries, not dumpable, config (secrets read), socket
 * bound, (daemonize), signals blocked for every thread, worker pools
 * started, then the accept loop.  SIGHUP reloads the config (a failed reload
 * keeps the old one); SIGTERM/SIGINT stop the broker and remove the socket. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libxml/parser.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker_config.h"
#include "config.h"   /* build configuration: WSTRUST_VERSION */
#include "embedded.h"
#include "log.h"
#include "server.h"
#include "transport.h"

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: wstrustd --config FILE [--foreground] [--debug]\n"
	        "       wstrustd --config FILE --check-config\n"
	        "       wstrustd --embedded FD [--debug]\n"
	        "\n"
	        "The wstrust broker: holds the STS credentials, serves token requests on\n"
	        "the Unix socket named by [broker] socket, parses STS replies in sandboxed\n"
	        "workers.\n"
	        "\n"
	        "  -c, --config FILE    configuration file (see docs/CONFIG.md)\n"
	        "  -f, --foreground     stay in the foreground and log to stderr\n"
	        "                       (systemd: Type=simple with --foreground)\n"
	        "  -d, --debug          log debug lines too\n"
	        "  -t, --check-config   validate FILE (including password files) and exit\n"
	        "  --embedded FD        private broker of one libwstrust channel (started by the\n"
	        "                       library in embedded mode, never by hand): serve FD only\n"
	        "  -h, --help           this text\n"
	        "  -V, --version        print the version\n");
}

/* Classic double fork: the daemon is not a session leader, so it can never
 * reacquire a controlling terminal. */
static int daemonize(void)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	if (chdir("/") != 0)
		return -1;
	umask(022);
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -1;
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	if (fd > 2)
		close(fd);
	return 0;
}

static void reload(struct server *srv, const char *path)
{
	char err[1024];
	struct broker_config *cfg;
	if (config_load(path, &cfg, err, sizeof err) != 0) {
		log_error("reload failed, keeping the current configuration: %s", err);
		return;
	}
	struct generation *cur = server_acquire(srv);
	if (strcmp(cur->cfg->socket, cfg->socket) != 0)
		log_warn("reload: [broker] socket changed to %s; the broker keeps listening on %s until restarted",
		         cfg->socket, cur->cfg->socket);
	server_release(srv, cur);
	struct generation *g = generation_new(cfg, err, sizeof err);
	if (!g) {
		log_error("reload failed, keeping the current configuration: %s", err);
		return;
	}
	server_swap(srv, g);
	log_info("configuration reloaded from %s (%zu profiles)", path, g->cfg->nprofiles);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "debug", no_argument, NULL, 'd' },
		{ "check-config", no_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "embedded", required_argument, NULL, 'E' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_path = NULL;
	int embedded_fd = -1;
	bool foreground = false, check_only = false, debug = false;
	int o;
	while ((o = getopt_long(argc, argv, "c:fdthV", opts, NULL)) != -1) {
		switch (o) {
		case 'c': config_path = optarg; break;
		case 'f': foreground = true; break;
		case 'd': debug = true; break;
		case 't': check_only = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("wstrustd %s\n", WSTRUST_VERSION); return 0;
		case 'E': {
			char *end;
			errno = 0;
			long v = strtol(optarg, &end, 10);
			if (errno || *end || v < 3 || v > 65535) {
				fprintf(stderr, "wstrustd: --embedded wants a file descriptor number >= 3, not %s\n", optarg);
				return 2;
			}
			embedded_fd = (int)v;
			break;
		}
		default: usage(stderr); return 2;
		}
	}
	if (embedded_fd >= 0 && (config_path || foreground || check_only || optind != argc)) {
		fprintf(stderr, "wstrustd: --embedded takes no configuration: the application sends it\n");
		return 2;
	}
	if (embedded_fd < 0 && (optind != argc || !config_path)) {
		fprintf(stderr, "wstrustd: %s\n", optind != argc ? "unexpected argument" : "--config FILE is required");
		usage(stderr);
		return 2;
	}

	/* Descriptors inherited by accident (an application's non-CLOEXEC files
	 * in embedded mode, a careless service manager) are closed: the broker
	 * holds secrets and must not hand a worker or anyone else more. */
	if (embedded_fd >= 0) {
		close_range(3, (unsigned)embedded_fd - 1, 0);
		close_range((unsigned)embedded_fd + 1, ~0u, 0);
	} else {
		close_range(3, ~0u, 0);
	}

	/* The broker holds passwords: no core dumps, no ptrace by same-uid
	 * processes, no /proc/PID/mem for them. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	struct rlimit nocore = { 0, 0 };
	setrlimit(RLIMIT_CORE, &nocore);
	signal(SIGPIPE, SIG_IGN);

	if (sodium_init() < 0) {
		fprintf(stderr, "wstrustd: libsodium failed to initialise\n");
		return 1;
	}
	xmlInitParser();
	if (transport_global_init() != 0) {
		fprintf(stderr, "wstrustd: libcurl failed to initialise\n");
		return 1;
	}
	/* Private keys go to OpenSSL's secure heap (idempotent). */
	credential_init_secure_heap();

	if (embedded_fd >= 0) {
		/* The application's stderr: warnings only, unless --debug. */
		log_init(false, debug ? LOG_LVL_DEBUG : LOG_LVL_WARN);
		int signals[] = { SIGHUP, SIGINT, SIGTERM };
		for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
			signal(signals[i], SIG_DFL);
		return embedded_main(embedded_fd);
	}

	char err[1024];
	struct broker_config *cfg;
	if (config_load(config_path, &cfg, err, sizeof err) != 0) {
		fprintf(stderr, "wstrustd: %s\n", err);
		return 1;
	}
	if (check_only) {
		printf("%s: OK (%zu profile%s)\n", config_path, cfg->nprofiles, cfg->nprofiles == 1 ? "" : "s");
		config_free(cfg);
		return 0;
	}

	/* The config path must survive chdir("/") for SIGHUP. */
	char *abs_config = realpath(config_path, NULL);
	if (!abs_config) {
		fprintf(stderr, "wstrustd: %s: %s\n", config_path, strerror(errno));
		config_free(cfg);
		return 1;
	}

	int lfd = server_listen(cfg->socket, err, sizeof err);
	if (lfd < 0) {
		fprintf(stderr, "wstrustd: %s\n", err);
		config_free(cfg);
		return 1;
	}
	if (!foreground && daemonize() != 0) {
		fprintf(stderr, "wstrustd: cannot daemonize: %s\n", strerror(errno));
		return 1;
	}
	log_init(!foreground, debug ? LOG_LVL_DEBUG : LOG_LVL_INFO);

	/* Signals are taken synchronously by the main loop; every thread
	 * started after this point inherits the mask. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	if (sfd < 0) {
		log_error("signalfd: %s", strerror(errno));
		return 1;
	}

	struct server srv = { .lock = PTHREAD_MUTEX_INITIALIZER, .uid = geteuid(), .listen_fd = lfd };
	srv.socket_path = strdup(cfg->socket);
	struct generation *g = generation_new(cfg, err, sizeof err);
	if (!g || !srv.socket_path) {
		log_error("%s", g ? "out of memory" : err);
		unlink(srv.socket_path ? srv.socket_path : "");
		return 1;
	}
	server_swap(&srv, g);
	log_info("wstrustd %s listening on %s (%zu profiles, worker %s)", WSTRUST_VERSION, srv.socket_path,
	         g->cfg->nprofiles, g->cfg->worker_path);

	for (;;) {
		struct pollfd p[2] = { { .fd = lfd, .events = POLLIN }, { .fd = sfd, .events = POLLIN } };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("poll: %s", strerror(errno));
			break;
		}
		if (p[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
				if (si.ssi_signo == SIGHUP) {
					log_info("SIGHUP: reloading %s", abs_config);
					reload(&srv, abs_config);
				} else {
					log_info("signal %u: shutting down", si.ssi_signo);
					break;
				}
			}
		}
		if (p[0].revents & POLLIN)
			server_accept(&srv);
	}

	close(lfd);
	unlink(srv.socket_path);
	/* Drop our reference: idle workers are stopped and secrets wiped now,
	 * or when the last in-flight request finishes. */
	server_swap(&srv, NULL);
	free(srv.socket_path);
	free(abs_config);
	return 0;
}
