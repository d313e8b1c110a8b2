//! Accounts: password hashing, generated passwords, the rules for names and passwords, and the
//! first administrator made on first start.
//!
//! Passwords are hashed with Argon2id at the argon2 crate's defaults, which are OWASP's
//! minimum (19 MiB, 2 passes, 1 lane). A password is never logged, stored or printed except
//! the one generated for a new account, which is printed once to whoever made it.

use anyhow::{Context, Result, anyhow};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use store_sqlite::Database;

/// Longest accepted password; argon2 takes any length, but a megabyte "password" is an attack.
pub const MAX_PASSWORD_LEN: usize = 256;
/// Shortest password a person may choose.
pub const MIN_PASSWORD_LEN: usize = 12;

/// Hashes a password into a PHC string.
pub fn hash_password(password: &str) -> Result<String> {
    let hash = Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|error| anyhow!("cannot hash the password: {error}"))?;
    Ok(hash.to_string())
}

/// Whether `password` matches the stored hash. Comparison happens inside argon2 in constant time.
pub fn verify_password(password: &str, hash: &str) -> bool {
    password.len() <= MAX_PASSWORD_LEN
        && Argon2::default()
            .verify_password(password.as_bytes(), hash)
            .is_ok()
}

/// Threads that run password hashing for requests (sign-in, password change).
const HASHING_THREADS: usize = 2;

type HashingJob = Box<dyn FnOnce() + Send>;

/// Runs `work` (an Argon2 hash or verification) on one of a fixed pair of threads, in arrival
/// order. Each Argon2id call allocates 19 MiB; on tokio's blocking pool, whose threads come and
/// go, the allocator kept such freed blocks in many per-thread arenas (500 sign-ins left the
/// process 400 MiB larger). Two threads bound that to two blocks, and bound the CPU a burst of
/// sign-ins can take from everything else to two cores' worth at most. `None` if the work
/// panicked.
pub async fn on_hashing_thread<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    static QUEUE: std::sync::OnceLock<std::sync::mpsc::Sender<HashingJob>> =
        std::sync::OnceLock::new();
    let queue = QUEUE.get_or_init(|| {
        let (sender, receiver) = std::sync::mpsc::channel::<HashingJob>();
        let receiver = std::sync::Arc::new(std::sync::Mutex::new(receiver));
        for index in 0..HASHING_THREADS {
            let receiver = std::sync::Arc::clone(&receiver);
            let spawned = std::thread::Builder::new()
                .name(format!("genkan-hash-{index}"))
                .spawn(move || {
                    loop {
                        let next = receiver
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .recv();
                        match next {
                            // A panicking job drops its answer (the caller gets `None`) and
                            // leaves the thread serving the next.
                            Ok(job) => {
                                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                            }
                            Err(_) => return,
                        }
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start a password hashing thread");
            }
        }
        sender
    });
    let (answer, answered) = tokio::sync::oneshot::channel();
    let job: HashingJob = Box::new(move || {
        let _ = answer.send(work());
    });
    queue.send(job).ok()?;
    answered.await.ok()
}

/// A random 20-character password from letters and digits that are hard to confuse
/// (no 0/O, 1/l/I), about 113 bits.
pub fn generate_password() -> Result<String> {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut password = String::with_capacity(20);
    while password.len() < 20 {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|error| anyhow!("no randomness from the OS: {error}"))?;
        // Rejection sampling keeps every character equally likely.
        let limit = 256 - 256 % ALPHABET.len();
        for byte in bytes {
            if usize::from(byte) < limit && password.len() < 20 {
                password.push(char::from(ALPHABET[usize::from(byte) % ALPHABET.len()]));
            }
        }
    }
    Ok(password)
}

/// User and group names: 1–64 characters of `a-z 0-9 . _ @ -`, starting with a letter or digit.
pub fn check_name(kind: &str, name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.bytes().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"._@-".contains(&byte)
        });
    if valid {
        Ok(())
    } else {
        Err(anyhow!(
            "`{name}` is not a valid {kind} name: use 1–64 lower-case letters, digits, '.', '_', '@' or '-', starting with a letter or digit"
        ))
    }
}

/// A password a person chose: long enough, not absurdly long.
pub fn check_password(password: &str) -> Result<()> {
    let length = password.chars().count();
    if length < MIN_PASSWORD_LEN {
        return Err(anyhow!(
            "the password is too short: use at least {MIN_PASSWORD_LEN} characters"
        ));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(anyhow!(
            "the password is too long: at most {MAX_PASSWORD_LEN} bytes"
        ));
    }
    Ok(())
}

/// On a database with no users, makes `admin` (group admin) with a generated password that
/// must be changed at first sign-in, and returns that password for the caller to show once.
pub fn bootstrap_admin(database: &mut Database) -> Result<Option<String>> {
    if database.user_count()? > 0 {
        return Ok(None);
    }
    let actor = crate::accounts::Actor {
        name: "genkan".into(),
        source: None,
    };
    crate::accounts::Accounts::new(database, actor)
        .add_user("admin", &["admin".to_owned()], None)
        .context("cannot create the first administrator")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashing_threads_answer_in_turn_and_survive_a_panic() {
        let answers = futures_util::future::join_all(
            (0..6).map(|number| on_hashing_thread(move || number * 2)),
        )
        .await;
        assert_eq!(
            answers,
            [Some(0), Some(2), Some(4), Some(6), Some(8), Some(10)]
        );
        assert_eq!(
            on_hashing_thread(|| -> u8 { panic!("a job that fails") }).await,
            None
        );
        let names = on_hashing_thread(|| std::thread::current().name().map(str::to_owned)).await;
        assert!(
            names
                .flatten()
                .is_some_and(|name| name.starts_with("genkan-hash-"))
        );
        // Both threads still serve after the panic.
        let after =
            futures_util::future::join_all((0..4).map(|n| on_hashing_thread(move || n))).await;
        assert_eq!(after, [Some(0), Some(1), Some(2), Some(3)]);
    }

    #[test]
    fn hashes_verify_and_differ_by_salt() {
        let first = hash_password("correct horse battery").unwrap();
        let second = hash_password("correct horse battery").unwrap();
        assert!(
            first.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{first}"
        );
        assert_ne!(first, second);
        assert!(verify_password("correct horse battery", &first));
        assert!(!verify_password("correct horse batterY", &first));
        assert!(!verify_password(&"x".repeat(10_000), &first));
        assert!(!verify_password("anything", "not a hash"));
    }

    #[test]
    fn generated_passwords_are_long_and_unambiguous() {
        let password = generate_password().unwrap();
        assert_eq!(password.len(), 20);
        assert!(!password.contains(['0', 'O', '1', 'l', 'I']));
        assert_ne!(password, generate_password().unwrap());
    }

    #[test]
    fn names_and_passwords_are_checked() {
        for good in ["suzuki", "t.tanaka", "agent-07", "a@example.jp"] {
            check_name("user", good).unwrap();
        }
        for bad in [
            "",
            "Suzuki",
            "-x",
            "鈴木",
            "a b",
            &"a".repeat(65),
            "x\r\nSet-Cookie: y",
        ] {
            assert!(check_name("user", bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_password("short").is_err());
        assert!(check_password(&"p".repeat(300)).is_err());
        check_password("long enough passphrase").unwrap();
    }
}
