use super::*;

/// A tiny fleet (CI's size): with 1,000 UIDs for 300 identities, collisions are many; the
/// rule still gives no identity two UIDs, refuses where it must, and decides exactly as
/// the SQLite store does; the previous release's probing splits identities between hosts.
#[test]
fn a_tiny_fleet_agrees_and_the_store_decides_the_same() {
    let mut spec = Spec::new(6, 6, 300);
    spec.uids = IdRange {
        min: 2_000_000,
        max: 2_000_999,
    };
    spec.gids = IdRange {
        min: 2_001_000,
        max: 2_001_999,
    };
    spec.local_per_mille = 500;
    spec.verify = 2;
    spec.threads = 2;
    let r = run(&spec).unwrap();
    assert!(r.colliding_pairs > 10, "{r:?}");
    assert_eq!(r.fleet.split_identities, 0, "{r:?}");
    assert_eq!(r.fleet.split_groups, 0, "{r:?}");
    assert!(r.fleet.refused_by_identity > 0, "{r:?}");
    assert!(r.before.split_identities > 0, "{r:?}");
    assert_eq!(r.verified.map(|v| v.0), Some(2));
    assert!(
        r.markdown("2026-01-01", "x")
            .contains("| this release | 0 |")
    );

    // With the reference host's map applied first, nobody is refused for another identity
    // and no UID stands for two identities.
    spec.with_map = true;
    let r = run(&spec).unwrap();
    assert_eq!(r.fleet.split_identities, 0, "{r:?}");
    assert_eq!(r.fleet.refused_by_identity, 0, "{r:?}");
    assert_eq!(r.fleet.shared_uids, 0, "{r:?}");
}
