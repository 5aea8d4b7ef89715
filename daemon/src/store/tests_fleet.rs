//! The fleet's ID rule in the store (issue 13): collisions refused the same way in every order,
//! pins from fleet maps (idempotent, mergeable), export pages, the check `oidcctl doctor`
//! prints, and GIDs from a claim.

use oidc_proto::types::{IdMap, PinnedGroup, PinnedUser};
use serde_json::json;

use super::tests::{
    ISSUER, NOW, apply, apply_preferring, apply_with, cfg, claims, import_map, no_local, store,
    user_candidate,
};
use super::*;
use crate::config::{ClaimPath, GidSource};

/// issue 13: two identities whose fleet UID is the same, seen in either order: the later is
/// refused with a message naming both; neither ever gets another number.
#[test]
fn a_colliding_pair_refuses_the_later_in_either_order() {
    let (x, y) = colliding_subs();
    let uid = user_candidate(&x, 0);
    for (first, second) in [(&x, &y), (&y, &x)] {
        let mut s = store();
        assert_eq!(
            apply(&mut s, &claims(first, &format!("u{first}"), &[]))
                .unwrap()
                .uid,
            uid
        );
        let err = apply(&mut s, &claims(second, &format!("u{second}"), &[])).unwrap_err();
        let StoreError::Conflict(m) = &err else {
            panic!("{err:?}")
        };
        assert!(
            m.contains(&format!("u{first}")) && m.contains(&format!("u{second}")),
            "{m}"
        );
        assert!(m.contains("oidcctl import"), "{m}");
    }
}

/// Two subjects whose first UID candidate is the same (searched: FNV is public).
fn colliding_subs() -> (String, String) {
    let mut seen = std::collections::HashMap::new();
    (0..)
        .find_map(|i| {
            let sub = format!("s{i}");
            seen.insert(user_candidate(&sub, 0), sub.clone())
                .map(|other| (other, sub))
        })
        .unwrap()
}

/// issue 13: a map pinning one of a colliding pair gives the other its next candidate, the
/// same on every host that has the map, whichever arrives first.
#[test]
fn a_pin_resolves_a_collision_the_same_in_every_order() {
    let (x, y) = colliding_subs();
    let uid = user_candidate(&x, 0);
    let map = IdMap {
        format: IdMap::FORMAT.into(),
        issuer: ISSUER.into(),
        users: vec![oidc_proto::types::IdMapUser {
            sub: x.clone(),
            name: "pinned".into(),
            uid,
            gid: uid,
        }],
        groups: Vec::new(),
    };
    for order in [[&x, &y], [&y, &x]] {
        let mut s = store();
        assert_eq!(import_map(&mut s, &map), Ok(1));
        s.remove_user("pinned").unwrap();
        for sub in order {
            apply(&mut s, &claims(sub, &format!("u{sub}"), &[])).unwrap();
        }
        assert_eq!(s.user_by_name(&format!("u{x}")).unwrap().unwrap().uid, uid);
        assert_eq!(
            s.user_by_name(&format!("u{y}")).unwrap().unwrap().uid,
            user_candidate(&y, 1)
        );
    }
}

fn pinned_user(sub: &str, name: &str, uid: u32) -> PinnedUser {
    PinnedUser {
        issuer: ISSUER.into(),
        sub: sub.into(),
        name: name.into(),
        uid,
    }
}

/// Pins `users` and `groups` with the test rules.
fn pin(
    s: &mut Store,
    users: &[PinnedUser],
    groups: &[PinnedGroup],
    dry_run: bool,
) -> Result<Pinned, Vec<ImportError>> {
    let (c, local) = (cfg(), no_local());
    let ctx = NewIds {
        issuer: ISSUER,
        cfg: &c,
        local: &local,
        now: NOW,
    };
    s.import_pins(&[ctx], users, groups, dry_run).unwrap()
}

/// The same map applied twice changes nothing the second time; two hosts' maps applied one
/// after the other (or merged) pin both; a dry run keeps nothing.
#[test]
fn pins_are_idempotent_mergeable_and_dry_runs_keep_nothing() {
    let a = pinned_user("sub-a", "alice", user_candidate("sub-a", 3));
    let b = pinned_user("sub-b", "bob", user_candidate("sub-b", 0));
    let mut s = store();
    let dry = pin(&mut s, std::slice::from_ref(&a), &[], true).unwrap();
    assert_eq!((dry.new_pins, dry.created), (1, 1));
    assert_eq!(s.counts().unwrap().users, 0);
    let first = pin(&mut s, std::slice::from_ref(&a), &[], false).unwrap();
    assert_eq!((first.new_pins, first.already, first.created), (1, 0, 1));
    let again = pin(&mut s, std::slice::from_ref(&a), &[], false).unwrap();
    assert_eq!((again.new_pins, again.already), (0, 1));
    let merged = pin(&mut s, &[a.clone(), b.clone()], &[], false).unwrap();
    assert_eq!((merged.new_pins, merged.already), (1, 1));
    assert_eq!(s.user_by_name("alice").unwrap().unwrap().uid, a.uid);
    assert_eq!(s.user_by_name("bob").unwrap().unwrap().uid, b.uid);
}

/// An ID pinned to one identity is refused for another, naming the earlier pin, and a pinned
/// identity is not pinned again elsewhere: the whole part is refused.
#[test]
fn pins_never_give_one_id_to_two_identities() {
    let uid = user_candidate("sub-a", 0);
    let mut s = store();
    pin(&mut s, &[pinned_user("sub-a", "alice", uid)], &[], false).unwrap();
    s.remove_user("alice").unwrap();
    let errors = pin(
        &mut s,
        &[
            pinned_user("sub-c", "carol", user_candidate("sub-c", 0)),
            pinned_user("sub-b", "bob", uid),
        ],
        &[],
        false,
    )
    .unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].index, 1);
    assert!(errors[0].message.contains("alice"), "{errors:?}");
    assert_eq!(s.counts().unwrap().users, 0, "carol was written");
    let errors = pin(
        &mut s,
        &[pinned_user("sub-a", "alice", uid + 1)],
        &[],
        false,
    )
    .unwrap_err();
    assert!(
        errors[0]
            .message
            .contains(&format!("pinned it to UID {uid}")),
        "{errors:?}"
    );
}

/// Export pages hold every user, group and pin (also pins whose identity has no user here), in
/// ID order, each once.
#[test]
fn export_pages_hold_everything_once() {
    let mut s = store();
    for i in 0..5 {
        apply(
            &mut s,
            &claims(&format!("sub-{i}"), &format!("u{i}"), &["g1", "g2"]),
        )
        .unwrap();
    }
    pin(
        &mut s,
        &[pinned_user("sub-p", "pinned", user_candidate("sub-p", 0))],
        &[],
        false,
    )
    .unwrap();
    s.remove_user("pinned").unwrap();
    let (mut users, mut groups) = (Vec::new(), Vec::new());
    let (mut after_uid, mut after_gid) = (0, 0);
    loop {
        let page = s.export_page_of(None, after_uid, after_gid, 2).unwrap();
        assert!(page.users.len() + page.groups.len() <= 2);
        if let Some(u) = page.users.last() {
            after_uid = u.uid;
        }
        if let Some(g) = page.groups.last() {
            after_gid = g.gid;
        }
        users.extend(page.users);
        groups.extend(page.groups);
        if !page.more {
            break;
        }
    }
    assert_eq!(users.len(), 6, "{users:?}");
    assert_eq!(groups.len(), 2, "{groups:?}");
    assert!(users.windows(2).all(|w| w[0].uid < w[1].uid));
    assert!(users.iter().any(|u| u.sub == "sub-p"));
    assert!(
        s.export_page(Some("https://other.example.com"), 0, 0)
            .unwrap()
            .users
            .is_empty()
    );
}

/// `oidcctl doctor`'s check: a UID off the rule (kept from a provisional entry) and a UID other
/// than the map's pin are reported; IDs the rule gives are not.
#[test]
fn the_id_check_reports_ids_off_the_rule_and_off_the_pins() {
    let mut s = store();
    apply(&mut s, &claims("sub-a", "alice", &["dev"])).unwrap();
    let odd = user_candidate("sub-b", 5);
    apply_preferring(
        &mut s,
        &cfg(),
        &no_local(),
        &claims("sub-b", "bob", &[]),
        odd,
    )
    .unwrap();
    let (c, local) = (cfg(), no_local());
    let ctx = NewIds {
        issuer: ISSUER,
        cfg: &c,
        local: &local,
        now: NOW,
    };
    let check = s.id_check(&[ctx]).unwrap();
    assert_eq!((check.checked, check.differing), (3, 1), "{check:?}");
    let f = &check.findings[0];
    assert_eq!((f.name.as_str(), f.id), ("bob", odd));
    assert_eq!(
        (f.expected, f.pinned),
        (Some(user_candidate("sub-b", 0)), false)
    );
    // A pin other than alice's UID (made by hand: an import would refuse it).
    let other = user_candidate("sub-a", 9);
    s.exec_for_test(&format!(
        "INSERT INTO id_pins VALUES ('user', '{ISSUER}', 'sub-a', 'alice', {other}, 0)"
    ))
    .unwrap();
    let ctx = NewIds {
        issuer: ISSUER,
        cfg: &c,
        local: &local,
        now: NOW,
    };
    let check = s.id_check(&[ctx]).unwrap();
    assert_eq!((check.differing, check.pins), (2, 1), "{check:?}");
    assert!(
        check
            .findings
            .iter()
            .any(|f| f.name == "alice" && f.expected == Some(other) && f.pinned)
    );
}

/// issue 13: under `gid_source = "claim"` a provider group's GID is its entry in the object
/// claim; a group the claim gives no GID is left out, and a taken GID skips the group.
#[test]
fn group_gids_come_from_the_claim() {
    let mut c = cfg();
    c.mapping.gid_source = GidSource::Claim;
    c.claims.gid = Some(ClaimPath("group_gids".into()));
    let gid = c.mapping.gids.min + 5;
    let claims = json!({
        "sub": "sub-a", "preferred_username": "alice",
        "groups": ["dev", "ops"], "group_gids": {"dev": gid, "ops": "x"}
    });
    let mut s = store();
    apply_with(&mut s, &c, &no_local(), &claims).unwrap();
    assert_eq!(s.group_by_name("dev").unwrap().unwrap().gid, gid);
    assert_eq!(s.group_by_name("ops").unwrap(), None);
    // Another group claiming the same GID is left out; the user still logs in.
    let claims = json!({
        "sub": "sub-b", "preferred_username": "bob",
        "groups": ["qa"], "group_gids": {"qa": gid}
    });
    apply_with(&mut s, &c, &no_local(), &claims).unwrap();
    assert_eq!(s.group_by_name("qa").unwrap(), None);
    assert_eq!(s.group_by_gid(gid).unwrap().unwrap().name, "dev");
}

/// A format-1 map (an older oidcctl's) still pins, with its single issuer.
#[test]
fn a_format_1_map_still_pins() {
    let uid = user_candidate("sub-a", 2);
    let map = IdMap {
        format: IdMap::FORMAT.into(),
        issuer: ISSUER.into(),
        users: vec![oidc_proto::types::IdMapUser {
            sub: "sub-a".into(),
            name: "alice".into(),
            uid,
            gid: uid,
        }],
        groups: Vec::new(),
    };
    let mut s = store();
    assert_eq!(import_map(&mut s, &map), Ok(1));
    assert_eq!(s.export_page(None, 0, 0).unwrap().users[0].uid, uid);
}
