//! Starting a call from a thread outside the runtime (a binding's event-loop thread).
//!
//! [`start`] polls the call once right there, inside the runtime's context, and hands it to the
//! runtime only if it has to wait. A call that needs no I/O (a refusal, a tools list) never
//! leaves the calling thread, and one that waits has already sent its first statement, so no
//! runtime worker is woken just to begin it: spawning instead costs a cross-thread wake-up per
//! call before any work starts, which on a small VM is a large share of a short call.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Wake, Waker};
use tokio::runtime::Handle;

type Call = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Run `fut` to completion: its first poll here (within `handle`'s context), the rest as a task
/// on the runtime, spawned from wherever it is first woken (usually a runtime worker that saw the
/// database answer, whose own queue then takes it). The output is delivered by the future itself
/// (for example by resolving a promise).
pub fn start<F>(handle: &Handle, fut: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let _runtime = handle.enter();
    let mut fut: Call = Box::pin(fut);
    let hand_off = Arc::new(HandOff {
        handle: handle.clone(),
        slot: Mutex::new(Slot::Polling),
    });
    let waker = Waker::from(hand_off.clone());
    if fut
        .as_mut()
        .poll(&mut Context::from_waker(&waker))
        .is_ready()
    {
        return;
    }
    let mut slot = hand_off.slot.lock().unwrap_or_else(|e| e.into_inner());
    match std::mem::replace(&mut *slot, Slot::Spawned) {
        // Woken during the first poll: it is ready to go on.
        Slot::Woken => {
            drop(slot);
            handle.spawn(fut);
        }
        _ => *slot = Slot::Waiting(fut),
    }
}

/// A call polled once outside the runtime, waiting for its first wake-up.
struct HandOff {
    handle: Handle,
    slot: Mutex<Slot>,
}

enum Slot {
    /// The first poll is running.
    Polling,
    /// Woken while the first poll was running.
    Woken,
    /// Parked after the first poll.
    Waiting(Call),
    /// A runtime task owns it now; later wake-ups of this waker are stale.
    Spawned,
}

impl Wake for HandOff {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        match std::mem::replace(&mut *slot, Slot::Spawned) {
            Slot::Polling => *slot = Slot::Woken,
            Slot::Waiting(fut) => {
                drop(slot);
                self.handle.spawn(fut);
            }
            other => *slot = other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_call_that_does_not_wait_finishes_on_the_calling_thread() {
        let rt = runtime();
        let (tx, rx) = mpsc::channel();
        let caller = std::thread::current().id();
        start(rt.handle(), async move {
            tx.send(std::thread::current().id()).unwrap();
        });
        assert_eq!(rx.try_recv().unwrap(), caller);
    }

    #[test]
    fn a_call_that_waits_goes_on_on_the_runtime() {
        let rt = runtime();
        let (tx, rx) = mpsc::channel();
        let caller = std::thread::current().id();
        start(rt.handle(), async move {
            let first = std::thread::current().id();
            // A timer needs the runtime's context: the first poll has it.
            tokio::time::sleep(Duration::from_millis(5)).await;
            tx.send((first, std::thread::current().id())).unwrap();
        });
        let (first, rest) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(first, caller);
        assert_ne!(rest, caller);
    }

    #[test]
    fn a_wake_up_during_the_first_poll_is_not_lost() {
        let rt = runtime();
        let (tx, rx) = mpsc::channel();
        start(rt.handle(), async move {
            tokio::task::yield_now().await; // wakes itself before returning Pending
            tx.send(()).unwrap();
        });
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
    }
}
