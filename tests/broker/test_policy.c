/* Policy: default rule, allow by uid, by primary and supplementary group,
 * names resolved at load, bad entries refused with their name. */
#include "policy.h"
#include "t.h"

static struct policy_peer peer(uid_t uid, gid_t gid)
{
	struct policy_peer p = { .uid = uid, .gid = gid, .pid = 1234 };
	return p;
}

int main(void)
{
	char why[256], err[256];
	struct policy_acl a = { 0 };
	const uid_t broker = 998;

	/* Default: root and the broker's own uid only. */
	struct policy_peer p = peer(0, 0);
	CHECK(policy_check(&a, broker, &p, why, sizeof why) == POLICY_ALLOW, "root denied by default: %s", why);
	p = peer(broker, 5000);
	CHECK(policy_check(&a, broker, &p, why, sizeof why) == POLICY_ALLOW, "broker uid denied by default: %s", why);
	p = peer(1000, 1000);
	CHECK(policy_check(&a, broker, &p, why, sizeof why) == POLICY_DENY, "uid 1000 allowed by default");
	CHECK_CONTAINS(why, "default rule");

	/* allow_users: names and numbers; the default no longer applies. */
	CHECK(policy_acl_set_users(&a, "root, 4242 nobody", err, sizeof err) == 0, "%s", err);
	CHECK(a.nuids == 3 && a.uids[0] == 0 && a.uids[1] == 4242 && a.uids[2] == 65534, "resolved uids");
	p = peer(4242, 100);
	CHECK(policy_check(&a, broker, &p, why, sizeof why) == POLICY_ALLOW, "listed uid denied: %s", why);
	CHECK_CONTAINS(why, "allow_users");
	p = peer(65534, 65534);
	CHECK(policy_check(&a, broker, &p, why, sizeof why) == POLICY_ALLOW, "nobody (by name) denied");
	p = peer(broker, broker);
	CHECK(policy_check(&a, broker, &p, why, sizeof why) == POLICY_DENY,
	      "broker uid allowed although allow_users does not list it");
	CHECK(policy_acl_set_users(&a, "root", err, sizeof err) == -1, "second allow_users accepted");
	CHECK_CONTAINS(err, "given twice");
	policy_acl_free(&a);

	/* allow_groups: primary gid or any supplementary gid. */
	CHECK(policy_acl_set_groups(&a, "777,root", err, sizeof err) == 0, "%s", err);
	CHECK(a.ngids == 2 && a.gids[0] == 777 && a.gids[1] == 0, "resolved gids");
	p = peer(1000, 777);
	CHECK(policy_check(&a, broker, &p, why, sizeof why) == POLICY_ALLOW, "primary gid denied");
	CHECK_CONTAINS(why, "primary gid 777");
	p = peer(1000, 1000);
	p.ngroups = 3;
	p.groups[0] = 5;
	p.groups[1] = 777;
	p.groups[2] = 9;
	CHECK(policy_check(&a, broker, &p, why, sizeof why) == POLICY_ALLOW, "supplementary gid denied");
	CHECK_CONTAINS(why, "supplementary gid 777");
	p.ngroups = 1;
	CHECK(policy_check(&a, broker, &p, why, sizeof why) == POLICY_DENY, "unlisted groups allowed");
	p = peer(0, 1);
	CHECK(policy_check(&a, broker, &p, why, sizeof why) == POLICY_DENY,
	      "root allowed although only allow_groups is set and root's gid is not listed");
	policy_acl_free(&a);

	/* Bad entries name themselves. */
	CHECK(policy_acl_set_users(&a, "alice-does-not-exist", err, sizeof err) == -1, "unknown user accepted");
	CHECK_STREQ(err, "allow_users: no such user 'alice-does-not-exist'");
	policy_acl_free(&a);
	CHECK(policy_acl_set_groups(&a, "nogroup-xyz", err, sizeof err) == -1, "unknown group accepted");
	CHECK_STREQ(err, "allow_groups: no such group 'nogroup-xyz'");
	policy_acl_free(&a);
	CHECK(policy_acl_set_users(&a, "4294967295", err, sizeof err) == -1, "uid -1 accepted");
	policy_acl_free(&a);
	CHECK(policy_acl_set_users(&a, " , ", err, sizeof err) == -1, "empty list accepted");
	CHECK_CONTAINS(err, "empty list");
	policy_acl_free(&a);
	CHECK_STREQ(policy_decision_str(POLICY_ALLOW), "allow");
	CHECK_STREQ(policy_decision_str(POLICY_DENY), "deny");
	T_DONE("test_policy");
}
