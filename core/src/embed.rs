//! Plumbing for hosts that drive the runner from another language's event loop (the Node and
//! Python bindings).
//!
//! On a VM every cross-thread wake-up costs tens of microseconds, so a call started from a
//! host thread should hop threads no more often than the work itself does. A plain
//! `Handle::spawn` from the host thread hops before the call has done anything, and a callback
//! answer sent back from the host thread hops again. [`start`] instead runs the future as a small
//! task of its own that is polled wherever it is woken:
//!
//! - the first poll runs right here on the calling thread, inside the runtime's context: a call
//!   that finishes without waiting (an MCP `ping`, a tools list, a refusal) never leaves it, and
//!   one that waits has already sent its request;
//! - a wake-up from a runtime worker (the I/O driver saw the database answer) polls it on that
//!   worker, from its local queue: no other thread is woken, as for a native tokio task;
//! - a wake-up inside [`host_scope`] on the host thread (a JavaScript or Python executor callback
//!   handing back its receipt) polls it on the host thread when the scope ends, instead of
//!   waking a worker to carry on: the task sends its next statement from there;
//! - the first poll is such a scope too: a call that wakes another task as it starts (an
//!   executor callback's `tx.execute` handing its statement to the apply waiting for it) has
//!   that task polled here next, so the apply sends the statement from this thread;
//! - any other wake-up (another thread, or the task waking itself) hands it to the runtime.
//!
//! [`run_blocking`] is [`start`] for a thread that then waits for the answer (a synchronous
//! callback's statements).
//!
//! [`finishing`] is where the core says a call has only local work left (its ledger write), so a
//! host sleeping until the result can wake up while that work runs ([`with_finishing_hint`]).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Wake, Waker};
use tokio::runtime::Handle;

/// Run `fut` to completion: first poll here (within `handle`'s context), the rest where it is
/// woken (see the module docs). The output is delivered by the future itself (for example by
/// resolving a promise).
pub fn start<F>(handle: &Handle, fut: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let task = Arc::new(Task {
        state: AtomicU8::new(SCHEDULED),
        fut: Mutex::new(Some(Box::pin(fut))),
        handle: handle.clone(),
    });
    host_scope(|| task.run());
}

/// Run `fut` as [`start`] does and block this thread (not a runtime worker) until it is done;
/// `None` if it panicked (or the runtime dropped it) before finishing. Only what its first poll
/// wakes runs here; the thread then sleeps until the answer, so the first poll gets a scope of
/// its own even inside an outer one, whose tasks would otherwise wait for the outer scope to
/// end while this thread waits for them.
pub fn run_blocking<F>(handle: &Handle, fut: F) -> Option<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    /// Puts the outer scope back, even if the first poll panics.
    struct Restore(Option<Vec<Arc<Task>>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let outer = self.0.take();
            SCOPE.with(|s| *s.borrow_mut() = outer);
        }
    }
    let (done, answer) = std::sync::mpsc::sync_channel(1);
    {
        let _outer = Restore(SCOPE.with(|s| s.borrow_mut().take()));
        start(handle, async move {
            let _ = done.send(fut.await);
        });
    }
    answer.recv().ok()
}

/// Run `f` on a host thread; tasks it wakes are polled here when `f` returns, rather than on a
/// runtime worker. Use it around the hand-back of a callback's answer. Nested scopes join the
/// outer one.
pub fn host_scope<R>(f: impl FnOnce() -> R) -> R {
    let outer = SCOPE.with(|s| {
        let mut s = s.borrow_mut();
        let outer = s.is_some();
        if !outer {
            *s = Some(Vec::new());
        }
        outer
    });
    if outer {
        return f();
    }
    // Close the scope before draining even if `f` panics, so a later wake-up never waits for a
    // drain that will not come; a task polled in the drain that wakes again goes to the runtime.
    struct Drain;
    impl Drop for Drain {
        fn drop(&mut self) {
            let woken = SCOPE.with(|s| s.borrow_mut().take()).unwrap_or_default();
            for task in woken {
                task.run();
            }
        }
    }
    let _drain = Drain;
    f()
}

thread_local! {
    static SCOPE: RefCell<Option<Vec<Arc<Task>>>> = const { RefCell::new(None) };
}

const IDLE: u8 = 0;
/// Someone is about to poll it (queued in a scope, or on the runtime).
const SCHEDULED: u8 = 1;
const RUNNING: u8 = 2;
/// Woken while being polled: poll again afterwards.
const NOTIFIED: u8 = 3;
const DONE: u8 = 4;

type BoxedFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

struct Task {
    state: AtomicU8,
    /// Locked only by the one poller the state machine admits, so never contended.
    fut: Mutex<Option<BoxedFuture>>,
    handle: Handle,
}

impl Task {
    /// Poll once. Only called by whoever moved the state to `SCHEDULED`.
    fn run(self: Arc<Self>) {
        self.state.store(RUNNING, Ordering::Release);
        let waker = Waker::from(self.clone());
        let ready = {
            let _runtime = self.handle.enter();
            let mut slot = self.fut.lock().unwrap_or_else(|e| e.into_inner());
            let Some(fut) = slot.as_mut() else { return };
            let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                fut.as_mut().poll(&mut Context::from_waker(&waker))
            }));
            match polled {
                Ok(p) => {
                    if p.is_ready() {
                        *slot = None;
                    }
                    p.is_ready()
                }
                Err(panic) => {
                    *slot = None;
                    self.state.store(DONE, Ordering::Release);
                    drop(slot);
                    std::panic::resume_unwind(panic);
                }
            }
        };
        if ready {
            self.state.store(DONE, Ordering::Release);
        } else if self
            .state
            .compare_exchange(RUNNING, IDLE, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // Woken during the poll (a yield, or an answer that was already there).
            self.state.store(SCHEDULED, Ordering::Release);
            self.to_runtime();
        }
    }

    fn dispatch(self: Arc<Self>) {
        let queued = SCOPE.with(|s| match s.borrow_mut().as_mut() {
            Some(woken) => {
                woken.push(self.clone());
                true
            }
            None => false,
        });
        if !queued {
            self.to_runtime();
        }
    }

    /// On a runtime worker this lands in the worker's own queue and runs next; from any other
    /// thread it wakes a worker.
    fn to_runtime(self: Arc<Self>) {
        let handle = self.handle.clone();
        handle.spawn(async move { self.run() });
    }
}

impl Wake for Task {
    fn wake(self: Arc<Self>) {
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            let next = match state {
                IDLE => SCHEDULED,
                RUNNING => NOTIFIED,
                _ => return, // already scheduled, notified or done
            };
            match self
                .state
                .compare_exchange(state, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) if next == SCHEDULED => return self.dispatch(),
                Ok(_) => return,
                Err(now) => state = now,
            }
        }
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.clone().wake()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    /// Bytes written by another task and read back through an in-memory pipe (real I/O waits).
    async fn through_a_pipe<const N: usize>(bytes: [u8; N]) -> [u8; N] {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut a, mut b) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move { a.write_all(&bytes).await.unwrap() });
        let mut buf = [0u8; N];
        b.read_exact(&mut buf).await.unwrap();
        writer.await.unwrap();
        buf
    }

    #[test]
    fn a_ready_future_runs_entirely_on_the_calling_thread() {
        let rt = runtime();
        let here = std::thread::current().id();
        let (tx, rx) = std::sync::mpsc::channel();
        start(rt.handle(), async move {
            tx.send(std::thread::current().id()).unwrap();
        });
        assert_eq!(rx.recv().unwrap(), here);
    }

    #[test]
    fn a_waiting_future_finishes_on_the_runtime_after_io_and_timers() {
        let rt = runtime();
        let here = std::thread::current().id();
        let (tx, rx) = std::sync::mpsc::channel();
        start(rt.handle(), async move {
            let first = std::thread::current().id();
            tokio::time::sleep(Duration::from_millis(5)).await;
            let buf = through_a_pipe(*b"ok").await;
            tx.send((first, std::thread::current().id(), buf)).unwrap();
        });
        let (first, last, buf) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(first, here);
        assert_ne!(last, here, "continued on a runtime worker");
        assert_eq!(&buf, b"ok");
    }

    /// Start a call waiting for an answer, hand the answer back from a new thread (inside a
    /// host scope or not), and report whether the call carried on on that thread.
    fn answered_from_another_thread(in_scope: bool) -> bool {
        let rt = runtime();
        let (answer_tx, answer_rx) = tokio::sync::oneshot::channel::<u32>();
        let (out_tx, out_rx) = std::sync::mpsc::channel();
        start(rt.handle(), async move {
            let got = answer_rx.await.unwrap();
            out_tx.send((got, std::thread::current().id())).unwrap();
        });
        let answering = std::thread::spawn(move || {
            let send = || answer_tx.send(7).unwrap();
            if in_scope {
                host_scope(send)
            } else {
                send()
            }
            std::thread::current().id()
        });
        let answering = answering.join().unwrap();
        let (got, ran_on) = out_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(got, 7);
        ran_on == answering
    }

    #[test]
    fn an_answer_handed_back_inside_a_host_scope_continues_on_the_host_thread() {
        assert!(answered_from_another_thread(true));
    }

    #[test]
    fn an_answer_from_another_thread_outside_a_scope_continues_on_the_runtime() {
        assert!(!answered_from_another_thread(false));
    }

    /// An apply waiting for a callback's statement, as in `source::*`: serves each request
    /// after a real I/O wait and reports the thread that took the request.
    fn statement_server(
        rt: &tokio::runtime::Runtime,
    ) -> (
        tokio::sync::mpsc::Sender<tokio::sync::oneshot::Sender<u32>>,
        std::sync::mpsc::Receiver<std::thread::ThreadId>,
    ) {
        let (requests, mut rx) = tokio::sync::mpsc::channel::<tokio::sync::oneshot::Sender<u32>>(8);
        let (served_on, served) = std::sync::mpsc::channel();
        start(rt.handle(), async move {
            while let Some(reply) = rx.recv().await {
                served_on.send(std::thread::current().id()).unwrap();
                let _ = through_a_pipe(*b"q").await;
                let _ = reply.send(42);
            }
        });
        (requests, served)
    }

    async fn ask(requests: tokio::sync::mpsc::Sender<tokio::sync::oneshot::Sender<u32>>) -> u32 {
        let (reply, answer) = tokio::sync::oneshot::channel();
        requests.send(reply).await.unwrap();
        answer.await.unwrap()
    }

    #[test]
    fn a_task_woken_by_the_first_poll_of_a_call_is_polled_on_the_calling_thread() {
        let rt = runtime();
        let (requests, served) = statement_server(&rt);
        let (out_tx, out_rx) = std::sync::mpsc::channel();
        let handle = rt.handle().clone();
        let caller = std::thread::spawn(move || {
            start(&handle, async move {
                out_tx.send(ask(requests).await).unwrap();
            });
            std::thread::current().id()
        });
        let here = caller.join().unwrap();
        assert_eq!(served.recv_timeout(Duration::from_secs(5)).unwrap(), here);
        assert_eq!(out_rx.recv_timeout(Duration::from_secs(5)).unwrap(), 42);
    }

    #[test]
    fn run_blocking_sends_from_the_calling_thread_and_returns_the_answer() {
        let rt = runtime();
        let (requests, served) = statement_server(&rt);
        let here = std::thread::current().id();
        assert_eq!(run_blocking(rt.handle(), ask(requests.clone())), Some(42));
        assert_eq!(served.recv().unwrap(), here);
        // Inside an outer scope (whose queued tasks wait for it to end) it still completes.
        let got = host_scope(|| run_blocking(rt.handle(), ask(requests)));
        assert_eq!(got, Some(42));
        assert_eq!(served.recv().unwrap(), here);
    }

    #[test]
    fn run_blocking_answers_none_when_the_future_panics_after_waiting() {
        let rt = runtime();
        let got = run_blocking(rt.handle(), async {
            tokio::time::sleep(Duration::from_millis(2)).await;
            if std::hint::black_box(true) {
                panic!("statement server died");
            }
            1
        });
        assert_eq!(got, None);
    }

    #[test]
    fn many_tasks_woken_from_everywhere_all_complete_exactly_once() {
        let rt = runtime();
        let done = Arc::new(AtomicUsize::new(0));
        let n = 500;
        let mut senders = Vec::new();
        for i in 0..n {
            let done = done.clone();
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            senders.push(tx);
            start(rt.handle(), async move {
                if i % 3 == 0 {
                    tokio::task::yield_now().await;
                }
                assert_eq!(&through_a_pipe(*b"x").await, b"x");
                rx.await.unwrap();
                tokio::time::sleep(Duration::from_micros(50)).await;
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        // Half the answers inside host scopes on two threads, half outside.
        let halves: Vec<Vec<_>> = {
            let second = senders.split_off(n / 2);
            vec![senders, second]
        };
        let threads: Vec<_> = halves
            .into_iter()
            .enumerate()
            .map(|(k, part)| {
                std::thread::spawn(move || {
                    for tx in part {
                        if k == 0 {
                            host_scope(|| tx.send(()).unwrap());
                        } else {
                            tx.send(()).unwrap();
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while done.load(Ordering::SeqCst) < n && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(done.load(Ordering::SeqCst), n);
    }

    #[test]
    fn a_panic_in_the_first_poll_reaches_the_caller_and_drops_the_future() {
        let rt = runtime();
        struct Dropped(Arc<AtomicUsize>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let drops = Arc::new(AtomicUsize::new(0));
        let guard = Dropped(drops.clone());
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            start(rt.handle(), async move {
                let _guard = guard;
                panic!("boom");
            })
        }));
        assert!(caught.is_err());
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_future_that_wakes_itself_during_the_first_poll_completes() {
        let rt = runtime();
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..200 {
            let done = done.clone();
            start(rt.handle(), async move {
                tokio::task::yield_now().await; // wakes itself before returning pending
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while done.load(Ordering::SeqCst) < 200 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(done.load(Ordering::SeqCst), 200);
    }
}

tokio::task_local! {
    /// Set by a host around a call: told once when the call has nothing left to wait for.
    static FINISHING: FinishingHint;
}

/// A host's hook for [`finishing`], told at most once per call.
#[derive(Clone)]
pub struct FinishingHint(Arc<dyn Fn() + Send + Sync>);

impl FinishingHint {
    pub fn new(hook: impl Fn() + Send + Sync + 'static) -> Self {
        FinishingHint(Arc::new(hook))
    }
}

/// Run `fut` with `hint` told when the call reaches [`finishing`].
pub async fn with_finishing_hint<F: Future>(hint: FinishingHint, fut: F) -> F::Output {
    FINISHING.scope(hint, fut).await
}

/// Called by the core where a call has only local work left before its result (its ledger
/// write, say): no more waits on a database or a callback. A host waiting for the result can
/// use it to be awake when it arrives. A no-op outside [`with_finishing_hint`].
pub fn finishing() {
    let _ = FINISHING.try_with(|h| (h.0)());
}
