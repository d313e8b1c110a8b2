//! Sign-in throughput with Argon2id at OWASP's parameters: `bench/auth` runs this.
//!
//! Verifies a password against its stored hash on every core at once, as a burst of staff
//! signing in at nine o'clock would, and reports verifications per second and the time each
//! takes. The hashing cost is the deliberate part of a sign-in; everything else is small.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::disallowed_methods)]

use std::time::Instant;

fn main() {
    let per_thread: usize = std::env::var("LOGINS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let hash = server::identity::hash_password("correct horse battery staple").unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "not OWASP parameters: {hash}"
    );

    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let hash = hash.clone();
            std::thread::spawn(move || {
                let mut each = Vec::with_capacity(per_thread);
                for _ in 0..per_thread {
                    let before = Instant::now();
                    assert!(server::identity::verify_password(
                        "correct horse battery staple",
                        &hash
                    ));
                    each.push(before.elapsed().as_secs_f64() * 1000.0);
                }
                each
            })
        })
        .collect();
    let mut times: Vec<f64> = workers
        .into_iter()
        .flat_map(|worker| worker.join().unwrap())
        .collect();
    let total = started.elapsed().as_secs_f64();
    times.sort_by(f64::total_cmp);
    let count = times.len();
    println!("argon2id m=19456 KiB t=2 p=1, {threads} threads, {count} verifications");
    println!("logins/s: {:.1}", count as f64 / total);
    println!("median ms per verification: {:.1}", times[count / 2]);
    println!(
        "p99 ms per verification: {:.1}",
        times[(count - 1) * 99 / 100]
    );
}
