//! The NSS module's side of the socket: whatever frame a (broken) daemon sends back goes
//! through every lookup without panicking, and a SUCCESS hands glibc only entries it can
//! print as passwd and group lines (no NUL, ':' or newline in any field, no empty name, no
//! ',' or empty member) that answer the key asked for. NOTFOUND only comes from the daemon's
//! own NotFound (or an implausible name, never asked).
#![no_main]

use std::cell::Cell;

use libfuzzer_sys::fuzz_target;
use libnss::group::Group;
use libnss::interop::Response as Nss;
use libnss::passwd::Passwd;
use nss_oidc::lookup::{self, Daemon, NO_PASSWORD};
use oidc_proto::client::ClientError;
use oidc_proto::frame::{self, MAX_FRAME_LEN};
use oidc_proto::message::{Envelope, open_response};
use oidc_proto::types::{is_field_safe, is_plausible_name};
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

fn show_passwd(p: &Passwd) -> String {
    format!(
        "{:?}:{:?}:{}:{}:{:?}:{:?}:{:?}",
        p.name, p.passwd, p.uid, p.gid, p.gecos, p.dir, p.shell
    )
}

fn show_group(g: &Group) -> String {
    format!("{:?}:{:?}:{}:{:?}", g.name, g.passwd, g.gid, g.members)
}

fn check_passwd(p: &Passwd) {
    assert!(!p.name.is_empty(), "{}", show_passwd(p));
    assert_eq!(p.passwd, NO_PASSWORD);
    for f in [&p.name, &p.passwd, &p.gecos, &p.dir, &p.shell] {
        assert!(is_field_safe(f), "{}", show_passwd(p));
    }
}

fn check_group(g: &Group, named: bool) {
    assert!(!named || !g.name.is_empty(), "{}", show_group(g));
    assert_eq!(g.passwd, NO_PASSWORD);
    assert!(
        is_field_safe(&g.name) && is_field_safe(&g.passwd),
        "{}",
        show_group(g)
    );
    for m in &g.members {
        assert!(
            !m.is_empty() && is_field_safe(m) && !m.contains(','),
            "{}",
            show_group(g)
        );
    }
}

/// NOTFOUND only when the daemon answered NotFound (for a name that was asked at all).
fn check_not_found<T>(r: &Nss<T>, fake: &Fake, asked: bool, what: &str) {
    if matches!(r, Nss::NotFound) {
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

        let f = fake(&answer);
        let r = lookup::user_by_name(&f, name);
        check_not_found(&r, &f, asked, "user_by_name");
        if let Nss::Success(p) = &r {
            check_passwd(p);
            assert_eq!(&p.name, name);
        }

        let f = fake(&answer);
        let r = lookup::group_by_name(&f, name);
        check_not_found(&r, &f, asked, "group_by_name");
        if let Nss::Success(g) = &r {
            check_group(g, true);
            assert_eq!(&g.name, name);
        }

        let f = fake(&answer);
        let r = lookup::groups_of_user(&f, name);
        check_not_found(&r, &f, asked, "groups_of_user");
        if let Nss::Success(groups) = &r {
            let mut gids: Vec<u32> = groups.iter().map(|g| g.gid).collect();
            gids.sort_unstable();
            gids.dedup();
            assert_eq!(gids.len(), groups.len(), "a GID twice");
            for g in groups {
                check_group(g, false);
            }
        }
    }

    for &id in &ids {
        let f = fake(&answer);
        let r = lookup::user_by_uid(&f, id);
        check_not_found(&r, &f, true, "user_by_uid");
        if let Nss::Success(p) = &r {
            check_passwd(p);
            assert_eq!(p.uid, id);
        }

        let f = fake(&answer);
        let r = lookup::group_by_gid(&f, id);
        check_not_found(&r, &f, true, "group_by_gid");
        if let Nss::Success(g) = &r {
            check_group(g, true);
            assert_eq!(g.gid, id);
        }
    }

    let f = fake(&answer);
    let r = lookup::all_users(&f);
    check_not_found(&r, &f, true, "all_users");
    if let Nss::Success(users) = &r {
        users.iter().for_each(check_passwd);
    }

    let f = fake(&answer);
    let r = lookup::all_groups(&f);
    check_not_found(&r, &f, true, "all_groups");
    if let Nss::Success(groups) = &r {
        groups.iter().for_each(|g| check_group(g, true));
    }
});
