//! NSS load client for the load test (`tests/src/load.rs`): THREADS threads, each calling
//! glibc's `getpwnam_r`, `getpwuid_r`, `getgrnam_r` and `getgrgid_r` in turn (through
//! nsswitch.conf, so through libnss_oidc.so.2 inside the test namespace) for SECONDS, and one
//! JSON line on stdout: lookups, errors (an entry that should resolve did not) and latency
//! percentiles in microseconds.
//!
//!     nss_load THREADS SECONDS USER UID GROUP GID

use std::ffi::CString;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 7 {
        eprintln!("usage: nss_load THREADS SECONDS USER UID GROUP GID");
        std::process::exit(2);
    }
    let threads: usize = args[1].parse().expect("THREADS");
    let seconds: f64 = args[2].parse().expect("SECONDS");
    let user = CString::new(args[3].clone()).unwrap();
    let uid: u32 = args[4].parse().expect("UID");
    let group = CString::new(args[5].clone()).unwrap();
    let gid: u32 = args[6].parse().expect("GID");
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let workers: Vec<_> = (0..threads)
        .map(|i| {
            let (user, group) = (user.clone(), group.clone());
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let mut lat = Vec::new();
                    let mut errors = 0u64;
                    let mut n = i;
                    while Instant::now() < until {
                        let t = Instant::now();
                        let ok = lookup(n % 4, &user, uid, &group, gid);
                        lat.push(t.elapsed().as_micros() as u32);
                        if !ok {
                            errors += 1;
                        }
                        n += 1;
                    }
                    (lat, errors)
                })
                .expect("spawn")
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (lat, e) = w.join().expect("worker");
        all.extend(lat);
        errors += e;
    }
    all.sort_unstable();
    let pct = |p: usize| all.get((all.len() * p / 100).min(all.len().saturating_sub(1)));
    println!(
        "{{\"lookups\":{},\"errors\":{errors},\"p50_us\":{},\"p99_us\":{},\"max_us\":{}}}",
        all.len(),
        pct(50).copied().unwrap_or(0),
        pct(99).copied().unwrap_or(0),
        all.last().copied().unwrap_or(0)
    );
}

/// One lookup of kind `k`; true when the entry was found.
fn lookup(k: usize, user: &CString, uid: u32, group: &CString, gid: u32) -> bool {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: each call gets valid pointers to a result struct, a buffer of the stated size and
    // a result pointer, as the glibc functions require; nothing is kept past the call.
    unsafe {
        if k < 2 {
            let mut pw: libc::passwd = std::mem::zeroed();
            let mut res: *mut libc::passwd = std::ptr::null_mut();
            let rc = if k == 0 {
                libc::getpwnam_r(
                    user.as_ptr(),
                    &mut pw,
                    buf.as_mut_ptr(),
                    buf.len(),
                    &mut res,
                )
            } else {
                libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut res)
            };
            rc == 0 && !res.is_null()
        } else {
            let mut gr: libc::group = std::mem::zeroed();
            let mut res: *mut libc::group = std::ptr::null_mut();
            let rc = if k == 2 {
                libc::getgrnam_r(
                    group.as_ptr(),
                    &mut gr,
                    buf.as_mut_ptr(),
                    buf.len(),
                    &mut res,
                )
            } else {
                libc::getgrgid_r(gid, &mut gr, buf.as_mut_ptr(), buf.len(), &mut res)
            };
            rc == 0 && !res.is_null()
        }
    }
}
