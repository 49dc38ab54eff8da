#include "policy.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_ACL_ENTRIES 1024

static bool parse_id(const char *s, unsigned long *out)
{
	if (!*s)
		return false;
	for (const char *p = s; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	errno = 0;
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	/* (uid_t)-1 means "no change" to set*id(): never a valid identity. */
	if (errno || *end || v >= UINT_MAX)
		return false;
	*out = v;
	return true;
}

static int resolve_user(const char *name, uid_t *uid, char *err, size_t errlen)
{
	unsigned long v;
	if (parse_id(name, &v)) {
		*uid = (uid_t)v;
		return 0;
	}
	char buf[4096];
	struct passwd pw, *res = NULL;
	int rc = getpwnam_r(name, &pw, buf, sizeof buf, &res);
	if (rc || !res) {
		snprintf(err, errlen, "allow_users: no such user '%s'", name);
		return -1;
	}
	*uid = res->pw_uid;
	return 0;
}

static int resolve_group(const char *name, gid_t *gid, char *err, size_t errlen)
{
	unsigned long v;
	if (parse_id(name, &v)) {
		*gid = (gid_t)v;
		return 0;
	}
	char buf[16384];
	struct group gr, *res = NULL;
	int rc = getgrnam_r(name, &gr, buf, sizeof buf, &res);
	if (rc || !res) {
		snprintf(err, errlen, "allow_groups: no such group '%s'", name);
		return -1;
	}
	*gid = res->gr_gid;
	return 0;
}

/* Split on commas and blanks; call fn for each non-empty item. */
static int for_each_item(const char *list, const char *key,
                         int (*fn)(const char *item, void *ctx, char *err, size_t errlen),
                         void *ctx, char *err, size_t errlen)
{
	char *copy = strdup(list);
	if (!copy) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	int n = 0, rc = 0;
	char *save = NULL;
	for (char *tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		if (++n > MAX_ACL_ENTRIES) {
			snprintf(err, errlen, "%s: more than %d entries", key, MAX_ACL_ENTRIES);
			rc = -1;
			break;
		}
		if ((rc = fn(tok, ctx, err, errlen)) != 0)
			break;
	}
	if (rc == 0 && n == 0) {
		snprintf(err, errlen, "%s: empty list (omit the key for the default, or name at least one %s)",
		         key, strcmp(key, "allow_users") == 0 ? "user" : "group");
		rc = -1;
	}
	free(copy);
	return rc;
}

static int add_user(const char *item, void *ctx, char *err, size_t errlen)
{
	struct policy_acl *a = ctx;
	uid_t uid;
	if (resolve_user(item, &uid, err, errlen))
		return -1;
	uid_t *n = realloc(a->uids, (a->nuids + 1) * sizeof *n);
	if (!n) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	a->uids = n;
	a->uids[a->nuids++] = uid;
	return 0;
}

static int add_group(const char *item, void *ctx, char *err, size_t errlen)
{
	struct policy_acl *a = ctx;
	gid_t gid;
	if (resolve_group(item, &gid, err, errlen))
		return -1;
	gid_t *n = realloc(a->gids, (a->ngids + 1) * sizeof *n);
	if (!n) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	a->gids = n;
	a->gids[a->ngids++] = gid;
	return 0;
}

int policy_acl_set_users(struct policy_acl *a, const char *list, char *err, size_t errlen)
{
	if (a->users_set) {
		snprintf(err, errlen, "allow_users given twice");
		return -1;
	}
	a->users_set = true;
	return for_each_item(list, "allow_users", add_user, a, err, errlen);
}

int policy_acl_set_groups(struct policy_acl *a, const char *list, char *err, size_t errlen)
{
	if (a->groups_set) {
		snprintf(err, errlen, "allow_groups given twice");
		return -1;
	}
	a->groups_set = true;
	return for_each_item(list, "allow_groups", add_group, a, err, errlen);
}

void policy_acl_free(struct policy_acl *a)
{
	free(a->uids);
	free(a->gids);
	memset(a, 0, sizeof *a);
}

enum policy_decision policy_check(const struct policy_acl *a, uid_t broker_uid,
                                  const struct policy_peer *p, char *reason, size_t rlen)
{
	if (!a->users_set && !a->groups_set) {
		if (p->uid == 0 || p->uid == broker_uid) {
			snprintf(reason, rlen, "default rule: uid is %s", p->uid == 0 ? "root" : "the broker's");
			return POLICY_ALLOW;
		}
		snprintf(reason, rlen, "default rule: only root and the broker's uid %u (set allow_users/allow_groups)",
		         (unsigned)broker_uid);
		return POLICY_DENY;
	}
	for (size_t i = 0; i < a->nuids; i++)
		if (a->uids[i] == p->uid) {
			snprintf(reason, rlen, "uid listed in allow_users");
			return POLICY_ALLOW;
		}
	for (size_t i = 0; i < a->ngids; i++) {
		if (a->gids[i] == p->gid) {
			snprintf(reason, rlen, "primary gid %u listed in allow_groups", (unsigned)p->gid);
			return POLICY_ALLOW;
		}
		for (size_t j = 0; j < p->ngroups && j < POLICY_MAX_GROUPS; j++)
			if (a->gids[i] == p->groups[j]) {
				snprintf(reason, rlen, "supplementary gid %u listed in allow_groups", (unsigned)p->groups[j]);
				return POLICY_ALLOW;
			}
	}
	snprintf(reason, rlen, "uid and groups not in allow_users/allow_groups");
	return POLICY_DENY;
}

const char *policy_decision_str(enum policy_decision d)
{
	return d == POLICY_ALLOW ? "allow" : "deny";
}
