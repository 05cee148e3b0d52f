//! Busy-wait (`Runner.open(path, { busyWaitMs })`, off by default): while calls started with a
//! budget are in flight, a `setImmediate` ticker keeps the event loop turning, so libuv polls
//! with a zero timeout instead of sleeping until the result's wake-up. Other callbacks and I/O
//! still run on every turn; what it saves is the operating system waking a sleeping JS thread
//! (tens of microseconds on a VM), paid with the JS thread's CPU for at most the budget per
//! call. Results still arrive the usual way (the promise's threadsafe function); the ticker only
//! keeps the loop awake to see them.

use napi::bindgen_prelude::{
    Env, Function, FunctionCallContext, FunctionRef, JsObjectValue, JsValue, Unknown,
};
use std::cell::{Cell, RefCell};
use std::mem::ManuallyDrop;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The longest busy-wait accepted: past a few milliseconds the loop's own sleep costs nothing
/// worth saving.
pub const MAX_BUSY_WAIT_MS: f64 = 100.0;

type Fns = (
    FunctionRef<Unknown<'static>, Unknown<'static>>,
    FunctionRef<(), ()>,
);

/// One JS thread's ticker (the main thread, or a worker thread with its own runners).
struct Ticker {
    /// Calls started with a budget that have not settled yet (decremented on any thread).
    in_flight: Arc<AtomicUsize>,
    until: Cell<Option<Instant>>,
    ticking: Cell<bool>,
    /// `setImmediate` and the tick function, made once per thread. Never dropped: a reference
    /// released at thread exit would outlive its environment.
    fns: RefCell<Option<ManuallyDrop<Fns>>>,
}

thread_local! {
    static TICKER: Ticker = Ticker {
        in_flight: Arc::new(AtomicUsize::new(0)),
        until: Cell::new(None),
        ticking: Cell::new(false),
        fns: RefCell::new(None),
    };
}

/// The budget for `busyWaitMs`, or why it is refused.
pub fn budget(ms: Option<f64>) -> Result<Duration, String> {
    match ms {
        None => Ok(Duration::ZERO),
        Some(ms) if (0.0..=MAX_BUSY_WAIT_MS).contains(&ms) => Ok(Duration::from_secs_f64(ms / 1e3)),
        Some(ms) => Err(format!(
            "busyWaitMs must be between 0 and {MAX_BUSY_WAIT_MS} (got {ms})"
        )),
    }
}

/// How a pending call waits for its result on the JS thread.
#[derive(Clone, Copy, Default)]
pub struct Wait {
    /// Keep the loop turning from the start of the call for up to this long; zero: not at all.
    pub busy: Duration,
    /// Wake the loop when the call has only local work left, and turn until the result.
    pub prewake: bool,
}

/// How long a loop woken ahead of a result keeps turning for it at most.
pub const PREWAKE_BUDGET: Duration = Duration::from_millis(1);

/// On the JS thread, before starting a call with a budget: count it, and keep the loop turning
/// for up to `budget` (or as long as an earlier call asked for). The returned guard stops
/// counting the call when dropped, on whichever thread settles it.
pub fn call_started(env: &Env, budget: Duration) -> InFlight {
    TICKER.with(|t| {
        t.in_flight.fetch_add(1, Ordering::AcqRel);
        keep_hot_on(env, t, budget);
        InFlight(t.in_flight.clone())
    })
}

/// On the JS thread: keep the loop turning for up to `budget` while counted calls are in flight.
pub fn keep_hot(env: &Env, budget: Duration) {
    TICKER.with(|t| keep_hot_on(env, t, budget));
}

fn keep_hot_on(env: &Env, t: &Ticker, budget: Duration) {
    let wanted = Instant::now() + budget;
    t.until
        .set(Some(t.until.get().map_or(wanted, |u| u.max(wanted))));
    if !t.ticking.replace(true) && schedule(env, t).is_err() {
        t.ticking.set(false);
    }
}

/// On the JS thread: this thread's count of calls in flight that keep its loop turning, for a
/// call that will count itself from another thread (a pre-wake).
pub fn counter() -> Arc<AtomicUsize> {
    TICKER.with(|t| t.in_flight.clone())
}

/// Counts one call as in flight until dropped.
pub struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn schedule(env: &Env, t: &Ticker) -> napi::Result<()> {
    let mut fns = t.fns.borrow_mut();
    if fns.is_none() {
        let set_immediate: Function<Unknown, Unknown> = env
            .get_global()?
            .get_named_property_unchecked("setImmediate")?;
        let tick: Function<(), ()> = env.create_function_from_closure("synapsorBusyWait", tick)?;
        *fns = Some(ManuallyDrop::new((
            set_immediate.create_ref()?,
            tick.create_ref()?,
        )));
    }
    let (set_immediate, tick) = &**fns.as_ref().expect("set above");
    let tick = tick.borrow_back(env)?;
    set_immediate.borrow_back(env)?.call(tick.to_unknown())?;
    Ok(())
}

/// One turn: come back next turn while calls are in flight and the budget lasts.
fn tick(ctx: FunctionCallContext<'_>) -> napi::Result<()> {
    TICKER.with(|t| {
        let hot = t.in_flight.load(Ordering::Acquire) > 0
            && t.until.get().is_some_and(|u| Instant::now() < u);
        if !(hot && schedule(ctx.env, t).is_ok()) {
            t.ticking.set(false);
        } else {
            // Give the core up between turns: on a small machine the thread that will answer
            // (a runtime worker woken by the database) may be queued behind this one.
            std::thread::yield_now();
        }
    });
    Ok(())
}
