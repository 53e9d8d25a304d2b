//! Injected panics, for the tests that show a panic on one peer's input ends only that peer and
//! that a dead engine stops the process. Compiled only into debug builds, and armed only by a
//! call of this module's functions in the same process (the integration tests run the server
//! in-process; no flag, request or variable reaches them). Anywhere else — a release binary, the
//! benchmarks' optimised builds — every check below is an empty function, so the measured media
//! path is the shipped one. (Not a cargo feature: one would give the tests a feature set of their
//! own, and running the server after the tests would rebuild it.)

#[cfg(debug_assertions)]
mod injected {
    use std::{
        collections::HashSet,
        net::SocketAddr,
        sync::{
            atomic::{AtomicBool, Ordering},
            Mutex,
        },
    };

    /// Whether anything was injected at all: the per-packet checks cost one load until then.
    static ARMED: AtomicBool = AtomicBool::new(false);
    static TARGETS: Mutex<Option<HashSet<String>>> = Mutex::new(None);

    fn arm(target: String) {
        TARGETS.lock().unwrap().get_or_insert_with(HashSet::new).insert(target);
        ARMED.store(true, Ordering::Release);
    }

    fn hit(target: &str) -> bool {
        ARMED.load(Ordering::Acquire) && TARGETS.lock().unwrap().as_ref().is_some_and(|t| t.contains(target))
    }

    /// The next offer for this stream (`account/name`) panics while it is parsed.
    pub fn panic_on_offer(stream: &str) {
        arm(format!("offer {stream}"));
    }

    /// Every packet written to or read from this session panics on the media path.
    pub fn panic_on_packets(session_id: &str) {
        arm(format!("packets {session_id}"));
    }

    /// The engine bound to this media address panics outside any guard.
    pub fn panic_engine(media: SocketAddr) {
        arm(format!("engine {media}"));
    }

    pub(crate) fn offer(stream: &str) {
        if hit(&format!("offer {stream}")) {
            panic!("injected: offer for {stream}");
        }
    }

    pub(crate) fn packet(session_id: &str) {
        if ARMED.load(Ordering::Relaxed) && hit(&format!("packets {session_id}")) {
            panic!("injected: packet of session {session_id}");
        }
    }

    pub(crate) fn engine(media: SocketAddr) {
        if ARMED.load(Ordering::Relaxed) && hit(&format!("engine {media}")) {
            panic!("injected: engine at {media}");
        }
    }
}

#[cfg(debug_assertions)]
pub(crate) use injected::{engine, offer, packet};
#[cfg(debug_assertions)]
pub use injected::{panic_engine, panic_on_offer, panic_on_packets};

#[cfg(not(debug_assertions))]
#[inline(always)]
pub(crate) fn offer(_stream: &str) {}

#[cfg(not(debug_assertions))]
#[inline(always)]
pub(crate) fn packet(_session_id: &str) {}

#[cfg(not(debug_assertions))]
#[inline(always)]
pub(crate) fn engine(_media: std::net::SocketAddr) {}
