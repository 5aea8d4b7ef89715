//! The NSS map reader (`oidc_proto::nss_map`) on arbitrary bytes: every lookup returns a result
//! or an error, never a panic, an endless probe or a read outside the input. The module maps
//! this file into every process that resolves a user.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oidc_proto::nss_map::MapView;

fuzz_target!(|file: &[u8]| {
    let Ok((_, _, map)) = MapView::from_file(file) else {
        return;
    };
    let names: [&[u8]; 4] = [b"alice", b"bob", b"developers", b""];
    for name in names {
        if let Ok(Some(u)) = map.user_by_name(name) {
            assert!(u.blob.last() == Some(&0));
            assert!(u.fields.iter().all(|&f| f < u.blob.len()));
            let _ = u.gids().count();
        }
        if let Ok(Some(g)) = map.group_by_name(name) {
            assert!(g.blob.last() == Some(&0));
            let _ = g.member_names();
        }
    }
    for id in [0, 1, 70001, 70100, u32::MAX] {
        let _ = map.user_by_uid(id);
        if let Ok(Some(g)) = map.group_by_gid(id) {
            let _ = g.string_starts().count();
        }
    }
    let _ = map.sshd_paths().count();
});
