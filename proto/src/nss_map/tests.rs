use super::*;

fn alice() -> UserEntry<'static> {
    UserEntry {
        name: "alice",
        uid: 70001,
        gid: 70001,
        gecos: "Alice Test",
        dir: "/home/alice",
        shell: "/bin/bash",
        gids: &[70100, 27, 70101, 70100],
    }
}

fn sample() -> Vec<u8> {
    let mut e = MapEncoder::new(42);
    e.add_user(&alice()).unwrap();
    e.add_user(&UserEntry {
        name: "bob",
        uid: 70002,
        gid: 70002,
        gecos: "",
        dir: "/home/bob",
        shell: "/bin/sh",
        gids: &[],
    })
    .unwrap();
    e.add_group("oidc-admins", 70100, ["alice"]).unwrap();
    e.add_group("developers", 70101, ["alice", "bob"]).unwrap();
    e.add_group("alice", 70001, []).unwrap();
    e.add_group("bob", 70002, []).unwrap();
    e.add_sshd_path("/usr/sbin/sshd").unwrap();
    e.add_sshd_path("/usr/lib/openssh/sshd-session").unwrap();
    e.to_vec(7, 1_900_000_000).unwrap()
}

/// Writes entries and reads every one back by name and by ID, with all fields intact.
#[test]
fn round_trip() {
    let file = sample();
    let (state, valid_until, map) = MapView::from_file(&file).unwrap();
    assert_eq!((state, valid_until), (STATE_CURRENT, 1_900_000_000));
    assert_eq!(map.layout().generation, 7);
    assert_eq!((map.layout().users, map.layout().groups), (2, 4));
    let a = map.user_by_name(b"alice").unwrap().unwrap();
    assert_eq!((a.uid, a.gid), (70001, 70001));
    let fields: Vec<&[u8]> = (0..5).map(|i| a.field(i)).collect();
    assert_eq!(
        fields,
        [
            &b"alice"[..],
            b"*",
            b"Alice Test",
            b"/home/alice",
            b"/bin/bash"
        ]
    );
    assert_eq!(a.gids().collect::<Vec<_>>(), [27, 70100, 70101]);
    assert_eq!(map.user_by_uid(70001).unwrap(), Some(a));
    let b = map.user_by_uid(70002).unwrap().unwrap();
    assert_eq!(b.name(), b"bob");
    assert_eq!(b.field(2), b"");
    assert_eq!(b.gid_count(), 0);

    let d = map.group_by_name(b"developers").unwrap().unwrap();
    assert_eq!(d.gid, 70101);
    assert_eq!(d.member_names(), [&b"alice"[..], b"bob"]);
    assert_eq!(map.group_by_gid(70101).unwrap(), Some(d));
    let p = map.group_by_gid(70001).unwrap().unwrap();
    assert_eq!((p.name(), p.members), (&b"alice"[..], 0));
    let paths: Vec<&[u8]> = map.sshd_paths().collect();
    assert_eq!(
        paths,
        [&b"/usr/sbin/sshd"[..], b"/usr/lib/openssh/sshd-session"]
    );
}

/// Names and IDs that are not there are misses, including prefixes and extensions of names
/// that are.
#[test]
fn misses() {
    let file = sample();
    let (_, _, map) = MapView::from_file(&file).unwrap();
    for name in [&b"alic"[..], b"alicee", b"", b"root", b"ALICE", b"alice\0"] {
        assert_eq!(map.user_by_name(name).unwrap(), None, "{name:?}");
        assert_eq!(map.group_by_name(name).unwrap(), None, "{name:?}");
    }
    for id in [0, 70000, 70003, 70100 + 70001, u32::MAX] {
        assert_eq!(map.user_by_uid(id).unwrap(), None);
    }
    assert_eq!(map.user_by_uid(70100).unwrap(), None, "a GID is no UID");
    assert_eq!(map.group_by_gid(12345).unwrap(), None);
}

/// An empty map (no users, no groups) reads and answers every lookup with a miss.
#[test]
fn empty_map() {
    let file = MapEncoder::new(1).to_vec(1, 0).unwrap();
    let (_, _, map) = MapView::from_file(&file).unwrap();
    assert_eq!(map.user_by_name(b"alice").unwrap(), None);
    assert_eq!(map.group_by_gid(1).unwrap(), None);
    assert_eq!(map.sshd_paths().count(), 0);
}

/// The first entry with a name or ID wins (provider groups before private groups).
#[test]
fn first_entry_wins() {
    let mut e = MapEncoder::new(3);
    e.add_group("team", 5000, ["a"]).unwrap();
    e.add_group("team", 5001, ["b"]).unwrap();
    e.add_group("other", 5000, ["c"]).unwrap();
    let file = e.to_vec(1, 0).unwrap();
    let (_, _, map) = MapView::from_file(&file).unwrap();
    assert_eq!(map.group_by_name(b"team").unwrap().unwrap().gid, 5000);
    assert_eq!(map.group_by_gid(5000).unwrap().unwrap().name(), b"team");
    assert_eq!(map.group_by_gid(5001).unwrap().unwrap().name(), b"team");
    assert_eq!(map.group_by_name(b"other").unwrap().unwrap().gid, 5000);
}

/// Fields that cannot be written into a passwd or group line are refused, and a refused
/// entry leaves nothing behind.
#[test]
fn bad_fields_are_refused() {
    let mut e = MapEncoder::new(1);
    for bad in [
        UserEntry {
            name: "",
            ..alice()
        },
        UserEntry {
            name: "a:b",
            ..alice()
        },
        UserEntry {
            gecos: "x\ny",
            ..alice()
        },
        UserEntry {
            dir: "/a\0",
            ..alice()
        },
    ] {
        assert!(
            matches!(e.add_user(&bad), Err(EncodeError::BadField(_))),
            "{bad:?}"
        );
    }
    let long = "x".repeat(70_000);
    assert_eq!(
        e.add_user(&UserEntry {
            gecos: &long,
            ..alice()
        }),
        Err(EncodeError::TooLong)
    );
    for members in [vec!["a,b"], vec![""], vec!["ok", "x:y"]] {
        assert!(e.add_group("g", 1, members).is_err());
    }
    assert!(e.add_group("", 1, []).is_err());
    let file = e.to_vec(1, 0).unwrap();
    let (_, _, map) = MapView::from_file(&file).unwrap();
    assert_eq!((map.layout().users, map.layout().groups), (0, 0));
    assert_eq!(map.layout().file_len, HEADER_LEN + 4 * 16 * 8);
}

/// A user in 1,000 groups and a group of 1,000 members round-trip.
#[test]
fn large_records() {
    let gids: Vec<u32> = (0..1000).map(|i| 80_000 + i).collect();
    let names: Vec<String> = (0..1000).map(|i| format!("member{i:04}")).collect();
    let mut e = MapEncoder::new(9);
    e.add_user(&UserEntry {
        gids: &gids,
        ..alice()
    })
    .unwrap();
    e.add_group("crowd", 90_000, names.iter().map(String::as_str))
        .unwrap();
    let file = e.to_vec(1, 0).unwrap();
    let (_, _, map) = MapView::from_file(&file).unwrap();
    let a = map.user_by_name(b"alice").unwrap().unwrap();
    assert_eq!(a.gids().collect::<Vec<_>>(), gids);
    let g = map.group_by_name(b"crowd").unwrap().unwrap();
    assert_eq!(g.members, 1000);
    assert_eq!(g.member_names()[999], b"member0999");
}

/// Many entries: every one is found through every table (probing past collisions).
#[test]
fn many_entries_all_found() {
    let names: Vec<String> = (0..5000).map(|i| format!("u{i}")).collect();
    let mut e = MapEncoder::new(0xdead_beef);
    for (i, n) in names.iter().enumerate() {
        let id = 100_000 + i as u32 * 7;
        e.add_user(&UserEntry {
            name: n,
            uid: id,
            gid: id,
            gecos: "",
            dir: "/",
            shell: "/bin/sh",
            gids: &[],
        })
        .unwrap();
        e.add_group(n, id, []).unwrap();
    }
    let file = e.to_vec(1, 0).unwrap();
    let (_, _, map) = MapView::from_file(&file).unwrap();
    for (i, n) in names.iter().enumerate() {
        let id = 100_000 + i as u32 * 7;
        assert_eq!(map.user_by_name(n.as_bytes()).unwrap().unwrap().uid, id);
        assert_eq!(map.user_by_uid(id).unwrap().unwrap().name(), n.as_bytes());
        assert_eq!(map.group_by_gid(id).unwrap().unwrap().name(), n.as_bytes());
        assert_eq!(map.group_by_name(n.as_bytes()).unwrap().unwrap().gid, id);
        assert_eq!(map.user_by_uid(id + 1).unwrap(), None);
    }
}

/// Truncated files, a wrong magic, a wrong version and a wrong length are refused when the
/// header is read.
#[test]
fn bad_headers_are_refused() {
    let file = sample();
    for len in 0..file.len() {
        assert!(
            MapView::from_file(&file[..len]).is_err(),
            "truncated to {len}"
        );
    }
    let mut bad = file.clone();
    bad[16] ^= 1;
    assert_eq!(MapView::from_file(&bad).unwrap_err(), MapError::BadMagic);
    let mut bad = file.clone();
    bad[24] = 2;
    assert_eq!(MapView::from_file(&bad).unwrap_err(), MapError::Version(2));
    let mut longer = file.clone();
    longer.push(0);
    assert_eq!(
        MapView::from_file(&longer).unwrap_err(),
        MapError::Truncated
    );
    let mut bad = file.clone();
    bad[60..64].copy_from_slice(&3u32.to_le_bytes()); // slots not a power of two
    assert!(matches!(
        MapView::from_file(&bad),
        Err(MapError::Corrupt(_))
    ));
    let mut bad = file;
    bad[56..60].copy_from_slice(&u32::MAX.to_le_bytes()); // table past the end
    assert!(matches!(
        MapView::from_file(&bad),
        Err(MapError::Corrupt(_))
    ));
}

/// The header alone (what `oidcctl status` reads) gives what the whole file gives, and is
/// refused as the whole file is: short, of another length, bad magic, a section past the end.
#[test]
fn header_alone_reads_like_the_file() {
    let mut file = sample();
    file[STATE_OFFSET] = STATE_BEHIND;
    let (state, until, map) = MapView::from_file(&file).unwrap();
    let h = Header::read(&file[..HEADER_LEN], file.len()).unwrap();
    assert_eq!(
        (h.state, h.valid_until, h.layout),
        (state, until, *map.layout())
    );
    assert_eq!(
        (h.layout.generation, h.layout.users, h.layout.groups),
        (7, 2, 4)
    );
    assert_eq!(h.layout.file_len, file.len());
    for len in 0..HEADER_LEN {
        assert!(Header::read(&file[..len], file.len()).is_err(), "{len}");
    }
    for len in [0, 16, HEADER_LEN, file.len() - 1, file.len() + 1] {
        assert_eq!(
            Header::read(&file[..HEADER_LEN], len),
            Err(MapError::Truncated),
            "{len}"
        );
    }
    let mut bad = file.clone();
    bad[16] ^= 1;
    assert_eq!(Header::read(&bad, bad.len()), Err(MapError::BadMagic));
    let mut bad = file;
    bad[56..60].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        Header::read(&bad, bad.len()),
        Err(MapError::Corrupt(_))
    ));
}

/// Every lookup on `file` returns without panicking (a result or an error, either is fine).
fn exercise(file: &[u8]) {
    let Ok((_, _, map)) = MapView::from_file(file) else {
        return;
    };
    for name in [&b"alice"[..], b"bob", b"developers", b"oidc-admins", b"x"] {
        if let Ok(Some(u)) = map.user_by_name(name) {
            let _ = (0..5).map(|i| u.field(i).len()).sum::<usize>() + u.gids().count();
        }
        if let Ok(Some(g)) = map.group_by_name(name) {
            let _ = g.string_starts().count() + g.member_names().len();
        }
    }
    for id in [70001, 70002, 70100, 70101, 0, u32::MAX] {
        let _ = map.user_by_uid(id);
        if let Ok(Some(g)) = map.group_by_gid(id) {
            let _ = g.member_names();
        }
    }
    let _ = map.sshd_paths().count();
}

/// A small deterministic generator (xorshift) for the hostile-bytes tests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Property: whatever bytes of a valid map are changed (one to eight at a time, anywhere,
/// 20,000 times), every lookup returns without panicking or looping.
#[test]
fn hostile_bytes_never_panic() {
    let file = sample();
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for _ in 0..20_000 {
        let mut bad = file.clone();
        for _ in 0..=rng.below(8) {
            let i = rng.below(bad.len());
            bad[i] = match rng.below(4) {
                0 => 0,
                1 => 0xff,
                _ => rng.next() as u8,
            };
        }
        exercise(&bad);
    }
}

/// Property: section offsets and counts pointed anywhere (including past the end and at each
/// other) never make a lookup panic; record offsets in every slot pointed anywhere neither.
#[test]
fn hostile_offsets_never_panic() {
    let file = sample();
    let mut rng = Rng(0xfeed_f00d);
    let (_, _, map) = MapView::from_file(&file).unwrap();
    let sections = section_ranges(map.layout());
    for _ in 0..5_000 {
        let mut bad = file.clone();
        let field = 56 + 4 * rng.below(14);
        let v = match rng.below(3) {
            0 => rng.below(file.len() + 16) as u32,
            1 => u32::MAX - rng.below(16) as u32,
            _ => rng.next() as u32,
        };
        bad[field..field + 4].copy_from_slice(&v.to_le_bytes());
        // And a random record offset into a random table slot.
        let t = &sections[rng.below(4)];
        let slot = t.start + 8 * rng.below((t.end - t.start) / 8);
        bad[slot + 4..slot + 8].copy_from_slice(&(rng.next() as u32 % 400).to_le_bytes());
        exercise(&bad);
    }
}

/// A table with no free slot (which the encoder never writes) still ends every probe.
#[test]
fn full_table_ends() {
    let file = sample();
    let (_, _, map) = MapView::from_file(&file).unwrap();
    let mut bad = file.clone();
    for t in &section_ranges(map.layout())[..4] {
        for slot in t.clone().step_by(8) {
            bad[slot..slot + 4].copy_from_slice(&1u32.to_le_bytes());
            bad[slot + 4..slot + 8].copy_from_slice(&0u32.to_le_bytes());
        }
    }
    let (_, _, map) = MapView::from_file(&bad).unwrap();
    assert_eq!(map.user_by_uid(12345).unwrap(), None);
    exercise(&bad);
}

/// Record counts larger than the record (members, GIDs) are errors, not reads past it.
#[test]
fn lying_counts_are_errors() {
    let mut e = MapEncoder::new(5);
    e.add_group("g", 9, ["a", "b"]).unwrap();
    e.add_user(&UserEntry {
        gids: &[1, 2],
        ..alice()
    })
    .unwrap();
    let file = e.to_vec(1, 0).unwrap();
    let (_, _, map) = MapView::from_file(&file).unwrap();
    let (rec_at, _) = map.layout().records;
    // The group is the first record: members count at +4.
    let mut bad = file.clone();
    bad[rec_at + 4..rec_at + 8].copy_from_slice(&1000u32.to_le_bytes());
    let (_, _, m) = MapView::from_file(&bad).unwrap();
    assert!(m.group_by_gid(9).is_err());
    let mut bad = file.clone();
    bad[rec_at + 4..rec_at + 8].copy_from_slice(&3u32.to_le_bytes());
    let (_, _, m) = MapView::from_file(&bad).unwrap();
    let g = m.group_by_gid(9).unwrap().unwrap();
    assert_eq!(
        g.string_starts().last(),
        Some(None),
        "a missing string is seen"
    );
    // The user follows the group (12 + "g\0*\0a\0b\0" + two u16 lengths = 24 bytes): its
    // GID count at +8.
    let mut bad = file;
    let u = rec_at + 24;
    bad[u + 8..u + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let (_, _, m) = MapView::from_file(&bad).unwrap();
    assert!(m.user_by_name(b"alice").is_err());
}

/// A view with a layout that does not belong to its bytes (the default, or another map's)
/// answers errors or misses, never a panic.
#[test]
fn foreign_layouts_never_panic() {
    let file = sample();
    let (_, _, map) = MapView::from_file(&file).unwrap();
    let short = &file[MUTABLE_LEN..200];
    for view in [
        MapView::with_layout(&file[MUTABLE_LEN..], Layout::default()),
        MapView::with_layout(short, *map.layout()),
        MapView::with_layout(&[], *map.layout()),
    ] {
        let _ = view.user_by_name(b"alice");
        let _ = view.user_by_uid(70001);
        let _ = view.group_by_name(b"developers");
        let _ = view.group_by_gid(70101);
        let _ = view.sshd_paths().count();
    }
}

/// Writes the sample map as the fuzz target's seed (`cargo test -p oidc_proto -- --ignored
/// write_fuzz_seed` after a format change).
#[test]
#[ignore = "writes fuzz/seeds/nss_map/sample.map"]
fn write_fuzz_seed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/nss_map");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("sample.map"), sample()).unwrap();
}

/// Draining records to the file as they accumulate writes the same bytes as holding them all.
#[test]
fn drained_records_give_the_same_file() {
    let build = |drain: bool| {
        let mut e = MapEncoder::new(42);
        let mut out = vec![0u8; HEADER_LEN];
        for i in 0..300u32 {
            let name = format!("user{i}");
            let gids: Vec<u32> = (0..i % 7).collect();
            e.add_user(&UserEntry {
                name: &name,
                uid: 10_000 + i,
                gid: 10_000 + i,
                gecos: "",
                dir: "/home/x",
                shell: "/bin/sh",
                gids: &gids,
            })
            .unwrap();
            e.add_group(&name, 10_000 + i, []).unwrap();
            if drain && e.buffered() > 1000 {
                e.drain_records(&mut out).unwrap();
            }
        }
        e.add_group("user7", 1, ["dup"]).unwrap(); // a later duplicate name: left out
        e.write_tail(&mut out).unwrap();
        out[..HEADER_LEN].copy_from_slice(&e.header(3, 99).unwrap());
        out
    };
    let (held, drained) = (build(false), build(true));
    assert_eq!(held, drained);
    let (_, _, map) = MapView::from_file(&drained).unwrap();
    assert_eq!(
        map.user_by_name(b"user299").unwrap().unwrap().gid_count(),
        5
    );
    assert_eq!(map.group_by_name(b"user7").unwrap().unwrap().gid, 10_007);
}
