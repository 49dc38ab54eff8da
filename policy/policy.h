/* policy: who may use which profile.
 *
 * A caller is identified only by what the kernel attests on the socket
 * (SO_PEERCRED uid/gid/pid, SO_PEERGROUPS supplementary groups).  Each
 * profile carries an ACL built at config load from `allow_users` and
 * `allow_groups` (names resolved then, so a later rename cannot widen it).
 * No ACL configured: only the broker's own uid and root.  Default deny.
 *
 * The caller of policy_check writes the audit line; policy_check only
 * decides and says why, so the decision is testable without a logger. */
#ifndef WSTRUST_POLICY_H
#define WSTRUST_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define POLICY_MAX_GROUPS 256

struct policy_peer {
	uid_t uid;
	gid_t gid;
	pid_t pid;
	size_t ngroups;                    /* supplementary groups, from SO_PEERGROUPS */
	gid_t groups[POLICY_MAX_GROUPS];
};

struct policy_acl {
	bool users_set, groups_set;        /* either set: the default no longer applies */
	uid_t *uids;
	size_t nuids;
	gid_t *gids;
	size_t ngids;
};

/* Parse "alice, 1000, bob" / "wheel, 27": names or numeric ids, separated by
 * commas and/or blanks.  Returns 0, or -1 with a message naming the bad
 * entry in err.  May be called once per key. */
int policy_acl_set_users(struct policy_acl *a, const char *list, char *err, size_t errlen);
int policy_acl_set_groups(struct policy_acl *a, const char *list, char *err, size_t errlen);
void policy_acl_free(struct policy_acl *a);

enum policy_decision { POLICY_DENY = 0, POLICY_ALLOW = 1 };

/* broker_uid: the broker's own uid (allowed by the default rule).  reason
 * gets a short token-free explanation ("uid listed in allow_users",
 * "default: only uid 0 and the broker's uid 998"). */
enum policy_decision policy_check(const struct policy_acl *a, uid_t broker_uid,
                                  const struct policy_peer *p, char *reason, size_t rlen);

const char *policy_decision_str(enum policy_decision d);

#endif
