//! Password hashing with argon2id, off the async threads: on a few dedicated threads of the
//! lowest CPU priority, so a login storm queues logins instead of starving the SFU's packets and
//! the pages (`cargo bench --bench web`, `--bench fanout` run beside it).

use std::{
    panic::AssertUnwindSafe,
    sync::{mpsc, Arc, Mutex, OnceLock},
};

use argon2::{
    password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString},
    Algorithm, Argon2, Params, Version,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;

/// OWASP's argon2id recommendation (PRODUCT.md §2): 19 MiB, 2 passes, 1 lane.
const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
const LANES: u32 = 1;

/// Hashes run at most this many at once: each holds 19 MiB and a core for tens of milliseconds, so
/// a burst of logins must queue rather than exhaust memory or the blocking pool.
const CONCURRENT_HASHES: usize = 4;
/// Hashes waiting for a thread, at most (about a second of work): past it a request is refused
/// with 503 at once instead of queueing without end.
const QUEUED_HASHES: usize = 28;
/// What a refused request is told to wait.
const RETRY_AFTER_SECS: u64 = 2;

/// Hashes and verifies passwords on the hashing threads.
#[derive(Clone)]
pub struct PasswordHasher {
    /// One per hash running or queued; a permit travels with its job and is given back when the
    /// hash is done, whether or not its request still waits for it.
    places: Arc<Semaphore>,
}

impl Default for PasswordHasher {
    fn default() -> Self {
        Self { places: Arc::new(Semaphore::new(CONCURRENT_HASHES + QUEUED_HASHES)) }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// The hashing threads' queue; they start with the first hash.
fn hashing_threads() -> &'static mpsc::Sender<Job> {
    static JOBS: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    JOBS.get_or_init(|| {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..CONCURRENT_HASHES {
            let receiver = receiver.clone();
            let spawned = std::thread::Builder::new().name(format!("argon2-{i}")).spawn(move || {
                lower_this_threads_priority();
                loop {
                    let job = match receiver.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => return,
                    };
                    match job {
                        // A panicking hash fails its own request (its reply is dropped) only.
                        Ok(job) => drop(std::panic::catch_unwind(AssertUnwindSafe(job))),
                        Err(_) => return,
                    }
                }
            });
            if let Err(err) = spawned {
                tracing::error!(%err, "cannot start a password hashing thread");
            }
        }
        sender
    })
}

/// nice 19: the scheduler gives these threads what the SFU and the pages leave.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority has no memory preconditions; on Linux, PRIO_PROCESS with 0 is the
    // calling thread.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 19);
    }
}

/// Runs `work` on a hashing thread; `place` is held until it is done.
async fn on_hashing_thread<T: Send + 'static>(
    place: Option<OwnedSemaphorePermit>,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let (reply, result) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = reply.send(work());
        drop(place);
    });
    hashing_threads().send(job).map_err(|_| ApiError::Internal("password hashing threads stopped".into()))?;
    result.await.map_err(|_| ApiError::Internal("password hashing failed".into()))
}

fn argon2() -> Argon2<'static> {
    // The parameters are constants within argon2's accepted ranges, so this cannot fail.
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None).expect("argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A hash of a password nobody knows, verified against when the email is unknown so that an
/// unknown email and a wrong password cost the same time.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_now("ferrocast-dummy-password-for-timing").unwrap_or_default())
}

fn hash_now(password: &str) -> Result<String, argon2::password_hash::Error> {
    let mut salt_bytes = [0u8; 16];
    getrandom::getrandom(&mut salt_bytes).map_err(|_| argon2::password_hash::Error::Crypto)?;
    let salt = SaltString::encode_b64(&salt_bytes)?;
    Ok(argon2().hash_password(password.as_bytes(), &salt)?.to_string())
}

fn verify_now(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => argon2().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

impl PasswordHasher {
    /// Computes the timing-equaliser hash ahead of the first login.
    pub async fn warm_up(&self) {
        let _ = on_hashing_thread(None, dummy_hash).await;
    }

    /// A place in the hashing queue, or 503 when it is full.
    fn place(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.places.clone().try_acquire_owned().map_err(|_| ApiError::Busy {
            message: "the server is checking too many passwords at once",
            retry_after_secs: RETRY_AFTER_SECS,
        })
    }

    /// Returns the PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) of a new password.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let place = self.place()?;
        on_hashing_thread(Some(place), move || hash_now(&password))
            .await?
            .map_err(|e| ApiError::Internal(format!("argon2: {e}")))
    }

    /// Checks a password against a stored hash, or against the dummy hash when `phc` is `None`
    /// (unknown account), which always fails but takes the same time.
    pub async fn verify(&self, password: String, phc: Option<String>) -> Result<bool, ApiError> {
        let place = self.place()?;
        on_hashing_thread(Some(place), move || match phc {
            Some(phc) => verify_now(&password, &phc),
            None => {
                verify_now(&password, dummy_hash());
                false
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_queue_is_bounded_and_a_cancelled_request_keeps_its_place_until_its_hash_is_done() {
        let hasher = PasswordHasher::default();
        let phc = hash_now("x").unwrap();
        // Fill every place, then cancel every request: their hashes still run or wait.
        let mut requests = Vec::new();
        for _ in 0..CONCURRENT_HASHES + QUEUED_HASHES {
            let (hasher, phc) = (hasher.clone(), phc.clone());
            requests.push(tokio::spawn(async move { hasher.verify("guess".into(), Some(phc)).await }));
        }
        while hasher.places.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        for request in &requests {
            request.abort();
        }
        match hasher.verify("one more".into(), Some(phc.clone())).await {
            Err(ApiError::Busy { retry_after_secs, .. }) => assert!(retry_after_secs >= 1),
            other => panic!("a full queue refuses at once, not {other:?}"),
        }
        // Once the abandoned hashes are done, their places are free again.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while hasher.places.available_permits() < CONCURRENT_HASHES + QUEUED_HASHES {
            assert!(std::time::Instant::now() < deadline, "the places come back");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(matches!(hasher.verify("x".into(), Some(phc)).await, Ok(true)));
    }

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let phc = hash_now("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_now("correct horse", &phc));
        assert!(!verify_now("wrong horse", &phc));
        assert!(!verify_now("correct horse", "not a phc string"));
    }
}
