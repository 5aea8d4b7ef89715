//! The NSS module's side of the socket: whatever frame a (broken) daemon sends back goes
//! through every lookup without panicking, and a SUCCESS hands glibc only entries it can
//! print as passwd and group lines (no NUL, ':' or newline in any field, no empty name, no
//! ',' or empty member) that answer the key asked for. NOTFOUND only comes from the daemon's
//! own NotFound (or an implausible name, never asked).
#![no_main]

use std::cell::Cell;

use libfuzzer_sys::fuzz_target;
use nss_oidc::lookup::{self, Answer, Daemon};
use oidc_proto::client::ClientError;
use oidc_proto::frame::{self, MAX_FRAME_LEN};
use oidc_proto::message::{Envelope, open_response};
use oidc_proto::types::{UnixGroup, UnixUser, is_field_safe, is_plausible_name};
use oidc_proto::{Request, Response};
use serde_json::Value;

/// A daemon that answers every request with the fuzzed response.
struct Fake {
    answer: Response,
    calls: Cell<usize>,
}

impl Daemon for Fake {
    fn call(&self, _: &Request) -> Result<Response, ClientError> {
        self.calls.set(self.calls.get() + 1);
        Ok(self.answer.clone())
    }
}

fn check_passwd(p: &UnixUser) {
    assert!(!p.name.is_empty(), "{p:?}");
    for f in [&p.name, &p.gecos, &p.home, &p.shell] {
        assert!(is_field_safe(f), "{p:?}");
    }
}

fn check_group(g: &UnixGroup, named: bool) {
    let show_group = |g: &UnixGroup| format!("{g:?}");
    assert!(!named || !g.name.is_empty(), "{}", show_group(g));
    assert!(is_field_safe(&g.name), "{}", show_group(g));
    for m in &g.members {
        assert!(
            !m.is_empty() && is_field_safe(m) && !m.contains(','),
            "{}",
            show_group(g)
        );
    }
}

/// NOTFOUND only when the daemon answered NotFound (for a name that was asked at all).
fn check_not_found<T>(r: &Answer<T>, fake: &Fake, asked: bool, what: &str) {
    if matches!(r, Answer::NotFound) {
        assert!(
            !asked || fake.answer == Response::NotFound,
            "{what}: NOTFOUND for {:?}",
            fake.answer
        );
    }
    assert_eq!(fake.calls.get(), usize::from(asked), "{what}");
}

fn fake(answer: &Response) -> Fake {
    Fake {
        answer: answer.clone(),
        calls: Cell::new(0),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(Some((env, _))) = frame::decode::<Envelope<Value>>(data, MAX_FRAME_LEN) else {
        return;
    };
    let Ok(answer) = open_response(env) else {
        return;
    };

    // Keys: a fixed pair, and the ones the answer itself names, so that SUCCESS is reachable.
    let mut names = vec!["alice".to_string()];
    let mut ids = vec![70001u32];
    match &answer {
        Response::User(u) => {
            names.push(u.name.clone());
            ids.push(u.uid);
        }
        Response::Group(g) => {
            names.push(g.name.clone());
            ids.push(g.gid);
        }
        _ => {}
    }

    for name in &names {
        let asked = is_plausible_name(name);

        if !asked {
            continue; // answered NOTFOUND before any daemon lookup (see lookup::user_by_name)
        }
        let f = fake(&answer);
        let r = lookup::daemon_user_by_name(&f, name);
        check_not_found(&r, &f, asked, "user_by_name");
        if let Answer::Found(p) = &r {
            check_passwd(p);
            assert_eq!(&p.name, name);
        }

        let f = fake(&answer);
        let r = lookup::daemon_group_by_name(&f, name);
        check_not_found(&r, &f, asked, "group_by_name");
        if let Answer::Found(g) = &r {
            check_group(g, true);
            assert_eq!(&g.name, name);
        }

        let f = fake(&answer);
        let r = lookup::daemon_groups_of_user(&f, name);
        check_not_found(&r, &f, asked, "groups_of_user");
        if let Answer::Found(gids) = &r {
            let mut sorted = gids.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(&sorted, gids, "a GID twice or out of order");
        }
    }

    for &id in &ids {
        let f = fake(&answer);
        let r = lookup::daemon_user_by_uid(&f, id);
        check_not_found(&r, &f, true, "user_by_uid");
        if let Answer::Found(p) = &r {
            check_passwd(p);
            assert_eq!(p.uid, id);
        }

        let f = fake(&answer);
        let r = lookup::daemon_group_by_gid(&f, id);
        check_not_found(&r, &f, true, "group_by_gid");
        if let Answer::Found(g) = &r {
            check_group(g, true);
            assert_eq!(g.gid, id);
        }
    }

    let f = fake(&answer);
    let r = lookup::all_users(&f);
    check_not_found(&r, &f, true, "all_users");
    if let Answer::Found(users) = &r {
        users.iter().for_each(check_passwd);
    }

    let f = fake(&answer);
    let r = lookup::all_groups(&f);
    check_not_found(&r, &f, true, "all_groups");
    if let Answer::Found(groups) = &r {
        groups.iter().for_each(|g| check_group(g, true));
    }
});
