//! The daemon's side of the socket: any bytes a local user sends, framed or not, are decoded
//! and opened as a request without panicking, and a request that results survives encoding
//! and decoding unchanged (what the daemon understood is what a client meant to send).
#![no_main]

use libfuzzer_sys::fuzz_target;
use oidc_proto::frame::{self, MAX_REQUEST_LEN};
use oidc_proto::message::{Envelope, decode_request, open_request};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    // What the daemon does: the body after the length prefix, decoded straight into a request.
    if let Some(body) = data.get(frame::HEADER_LEN..) {
        if let Ok(request) = decode_request(body) {
            let bytes = serde_json::to_vec(&Envelope::new(request.clone())).expect("encodes");
            assert_eq!(decode_request(&bytes).expect("decodes again"), request);
        }
    }
    let Ok(Some((env, used))) = frame::decode::<Envelope<Value>>(data, MAX_REQUEST_LEN) else {
        return;
    };
    assert!(used <= data.len() && used <= frame::HEADER_LEN + MAX_REQUEST_LEN);
    let Ok(request) = open_request(env) else {
        return;
    };
    let bytes = frame::encode(&Envelope::new(request.clone()), usize::MAX)
        .expect("a decoded request encodes");
    let (again, len) = frame::decode::<Envelope<Value>>(&bytes, usize::MAX)
        .expect("an encoded request decodes")
        .expect("an encoded request is a whole frame");
    assert_eq!(len, bytes.len());
    let again = open_request(again).expect("an encoded request opens");
    assert_eq!(again, request);
});
