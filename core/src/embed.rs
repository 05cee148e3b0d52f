//! Plumbing for hosts that drive the runner from another language's event loop (the Node and
//! Python bindings).
//!
//! A plain `Handle::spawn` from a foreign thread puts the task on the runtime's shared queue and
//! wakes a parked worker: a cross-thread wake-up that costs tens of microseconds on a VM, before
//! the call has done anything. [`start`] instead polls the future once on the calling thread,
//! inside the runtime's context. A call that finishes without waiting (an MCP `ping`, a tools
//! list, a refusal) never leaves the calling thread; one that waits (a database round trip)
//! has already sent its request when it is handed to the runtime.

use std::future::Future;
use std::task::{Context, Waker};
use tokio::runtime::Handle;

/// Run `fut` to completion: first poll here (within `handle`'s context), the rest on the
/// runtime. The output is delivered by the future itself (for example by resolving a promise).
///
/// When the first poll is pending (a query was sent), the future is spawned right away, so the
/// worker wakes up while the database works rather than after it answers; the worker's first
/// poll registers the runtime's own wakers (the first poll used a no-op waker: every resource
/// re-checks readiness when polled, so nothing that happened in between is lost).
pub fn start<F>(handle: &Handle, fut: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let mut task = Box::pin(fut);
    let polled = {
        let _runtime = handle.enter();
        task.as_mut().poll(&mut Context::from_waker(Waker::noop()))
    };
    if polled.is_pending() {
        handle.spawn(task);
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
            let (a, mut b) = tokio::io::duplex(64);
            let writer = tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let mut a = a;
                a.write_all(b"ok").await.unwrap();
            });
            let mut buf = [0u8; 2];
            tokio::io::AsyncReadExt::read_exact(&mut b, &mut buf)
                .await
                .unwrap();
            writer.await.unwrap();
            tx.send((first, std::thread::current().id(), buf)).unwrap();
        });
        let (first, last, buf) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(first, here);
        assert_ne!(last, here, "continued on a runtime worker");
        assert_eq!(&buf, b"ok");
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
