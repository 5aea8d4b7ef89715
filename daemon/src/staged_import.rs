//! Imports larger than one request: `oidcctl import` sends the file in parts
//! ([`Request::AdminImportPart`](oidc_proto::Request::AdminImportPart), each under the request
//! size limit), kept here unapplied, then a commit applies them all in one transaction, all or
//! nothing, like a one-request import. Root only (checked by the handler).
//!
//! One staged import at a time, at most [`MAX_STAGED_BYTES`], dropped after [`IDLE`] without
//! a part or commit. Parts are kept as JSON text (a third of the size of parsed values) and
//! parsed one at a time at commit.

use std::time::{Duration, Instant};

use oidc_proto::Response;
use oidc_proto::types::ErrorCode;
use serde_json::Value;

use crate::access::Peer;
use crate::state::{State, lock};
use crate::store::Applied;

/// Largest import kept (JSON text of all its parts).
pub const MAX_STAGED_BYTES: usize = 256 * 1024 * 1024;
/// A staged import with no part or commit for this long is dropped.
pub const IDLE: Duration = Duration::from_secs(60);

/// Parts received so far.
#[derive(Debug)]
pub struct Staged {
    id: String,
    parts: Vec<Vec<u8>>,
    entries: u64,
    bytes: usize,
    touched: Instant,
}

/// Keeps one more part of the import `id`; a part for another id replaces a staged import
/// that has been idle for [`IDLE`], and is refused while another one is in progress.
pub fn part(state: &State, id: &str, entries: &[Value]) -> Response {
    if id.is_empty() || id.len() > 64 {
        return Response::error(ErrorCode::BadRequest, "invalid import id");
    }
    let text = match serde_json::to_vec(entries) {
        Ok(t) => t,
        Err(e) => return Response::error(ErrorCode::BadRequest, e.to_string()),
    };
    let mut slot = lock(&state.staged_import);
    if slot
        .as_ref()
        .is_some_and(|s| s.id != id && s.touched.elapsed() < IDLE)
    {
        return Response::error(
            ErrorCode::Busy,
            "another import is being sent; try again when it is done",
        );
    }
    let staged = match slot.as_mut() {
        Some(s) if s.id == id => s,
        _ => slot.insert(Staged {
            id: id.to_string(),
            parts: Vec::new(),
            entries: 0,
            bytes: 0,
            touched: Instant::now(),
        }),
    };
    if staged.bytes + text.len() > MAX_STAGED_BYTES {
        *slot = None;
        return Response::error(
            ErrorCode::Rejected,
            format!(
                "the import exceeds {} MiB; split the file",
                MAX_STAGED_BYTES >> 20
            ),
        );
    }
    staged.bytes += text.len();
    staged.entries += entries.len() as u64;
    staged.parts.push(text);
    staged.touched = Instant::now();
    Response::Done {
        message: format!("{} entries staged", staged.entries),
    }
}

/// Applies the staged import `id`, if its entry count is `total`.
pub fn commit(state: &State, peer: &Peer, id: &str, total: u64) -> Response {
    let staged = {
        let mut slot = lock(&state.staged_import);
        match slot.take() {
            Some(s) if s.id == id => s,
            other => {
                *slot = other;
                return Response::error(
                    ErrorCode::Rejected,
                    "no staged import with this id (parts are dropped after a minute idle): \
                     send the file again",
                );
            }
        }
    };
    if staged.entries != total {
        return Response::error(
            ErrorCode::Rejected,
            format!(
                "{} entries staged, {total} sent: nothing was applied; send the file again",
                staged.entries
            ),
        );
    }
    let started = Instant::now();
    match crate::import::claims(state, peer, crate::import::Parts::Staged(&staged.parts)) {
        Ok(crate::import::Outcome::Applied(applied)) => done(&applied, started),
        Ok(crate::import::Outcome::Refused(errors)) => crate::import::refused(&errors, total),
        Err(resp) => *resp,
    }
}

fn done(applied: &[Applied], started: Instant) -> Response {
    let new = applied.iter().filter(|a| a.created).count();
    for a in applied {
        log::debug!("imported user {} (uid {})", a.name, a.uid);
    }
    log::info!(
        "imported {} users ({new} new, {} refreshed) in {} ms",
        applied.len(),
        applied.len() - new,
        started.elapsed().as_millis()
    );
    Response::Done {
        message: format!(
            "{} users imported ({new} new, {} refreshed)",
            applied.len(),
            applied.len() - new
        ),
    }
}
