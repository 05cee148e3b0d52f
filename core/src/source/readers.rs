//! Reader connections of a server source, kept by the source rather than by a sqlx pool.
//!
//! A scoped read is one short read-only transaction: open it, select, commit. Through a sqlx pool
//! it cost two more round trips: the pool tests an idle connection with one before handing it out
//! and again, in a task of its own, before taking it back. Here a read costs those three
//! statements and nothing else:
//!
//! - no test before use: a connection the server has dropped while it sat idle (a restart, an
//!   idle timeout) fails on the read's first statement, before anything was read; the read then
//!   forgets every idle connection (they are likely gone too) and starts again, once, on a new
//!   connection;
//! - the connection goes back to the idle list only once its commit succeeded: a lease dropped
//!   before [`Lease::commit`] (an error, a cancelled call) closes its connection instead, so no
//!   connection comes back mid-transaction;
//! - the commit stays on the caller's path: committing later, in a task of its own, would save
//!   the caller a round trip but keep the transaction (and its lock on the table) open until that
//!   task runs, which on a current-thread runtime whose caller then blocks is never; a migration's
//!   `ALTER TABLE` would wait behind it, and every query behind that.
//!
//! At most [`MAX_READERS`] reads hold a connection at once; a read waits up to
//! [`ACQUIRE_TIMEOUT`] for its turn, as it did for the pool.

use sqlx::{ConnectOptions, Connection, Executor, SqlStr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub(crate) const MAX_READERS: usize = 8;
pub(crate) const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// An idle connection older than this is closed instead of reused (as the pool's idle timeout).
const IDLE_LIMIT: Duration = Duration::from_secs(600);

/// Reader connections for one source, created from `options` on demand.
pub(crate) struct Readers<C: Connection> {
    shared: Arc<Shared<C>>,
}

struct Shared<C: Connection> {
    options: C::Options,
    /// Most recently used last.
    idle: Mutex<Vec<(C, Instant)>>,
    permits: Arc<Semaphore>,
}

/// One connection on loan for one read, in its transaction once [`Readers::begin`] returns it.
pub(crate) struct Lease<C: Connection> {
    conn: Option<C>,
    shared: Arc<Shared<C>>,
    /// Counts this lease against [`MAX_READERS`] until it is dropped.
    _permit: OwnedSemaphorePermit,
    fresh: bool,
}

impl<C> Readers<C>
where
    C: Connection + 'static,
    for<'c> &'c mut C: Executor<'c, Database = C::Database>,
{
    pub(crate) fn new(options: C::Options) -> Self {
        Readers {
            shared: Arc::new(Shared {
                options,
                idle: Mutex::new(Vec::new()),
                permits: Arc::new(Semaphore::new(MAX_READERS)),
            }),
        }
    }

    /// A connection on which `begin` (the fixed text opening the read's transaction) succeeded.
    /// A reused connection that fails there with a lost connection is replaced by a new one, once.
    pub(crate) async fn begin(&self, begin: &SqlStr) -> Result<Lease<C>, sqlx::Error> {
        let mut lease = self.lease(false).await?;
        match run(lease.conn(), begin).await {
            Ok(()) => Ok(lease),
            Err(e) if !lease.fresh && connection_lost(&e) => {
                drop(lease);
                self.shared.take_idle();
                let mut lease = self.lease(true).await?;
                run(lease.conn(), begin).await?;
                Ok(lease)
            }
            Err(e) => Err(e),
        }
    }

    async fn lease(&self, fresh_only: bool) -> Result<Lease<C>, sqlx::Error> {
        let permit =
            tokio::time::timeout(ACQUIRE_TIMEOUT, self.shared.permits.clone().acquire_owned())
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)?
                .map_err(|_| sqlx::Error::PoolClosed)?;
        let reused = if fresh_only {
            None
        } else {
            self.shared.pop_idle()
        };
        let (conn, fresh) = match reused {
            Some(conn) => (conn, false),
            None => (self.shared.options.connect().await?, true),
        };
        Ok(Lease {
            conn: Some(conn),
            shared: self.shared.clone(),
            _permit: permit,
            fresh,
        })
    }
}

impl<C: Connection> Shared<C> {
    fn pop_idle(&self) -> Option<C> {
        let mut idle = self.idle.lock().expect("idle readers");
        // Oldest first: past the limit they are closed (dropped) rather than reused.
        idle.retain(|(_, since)| since.elapsed() < IDLE_LIMIT);
        idle.pop().map(|(c, _)| c)
    }

    fn take_idle(&self) -> Vec<(C, Instant)> {
        std::mem::take(&mut *self.idle.lock().expect("idle readers"))
    }

    fn put_back(&self, conn: C) {
        self.idle
            .lock()
            .expect("idle readers")
            .push((conn, Instant::now()));
    }
}

impl<C> Lease<C>
where
    C: Connection + 'static,
    for<'c> &'c mut C: Executor<'c, Database = C::Database>,
{
    pub(crate) fn conn(&mut self) -> &mut C {
        self.conn.as_mut().expect("leased connection")
    }

    /// Whether this connection was opened for this read (so session setup is still to do).
    pub(crate) fn fresh(&self) -> bool {
        self.fresh
    }

    /// Commit the read's transaction and keep the connection for the next read.
    pub(crate) async fn commit(mut self) -> Result<(), sqlx::Error> {
        let mut conn = self.conn.take().expect("leased connection");
        run(&mut conn, &SqlStr::from_static("COMMIT")).await?;
        self.shared.put_back(conn);
        Ok(())
    }
}

async fn run<C>(conn: &mut C, sql: &SqlStr) -> Result<(), sqlx::Error>
where
    C: Connection,
    for<'c> &'c mut C: Executor<'c, Database = C::Database>,
{
    Executor::execute(&mut *conn, sqlx::raw_sql(sql.clone()))
        .await
        .map(|_| ())
}

/// The connection itself is gone (as opposed to the server refusing the statement): an I/O or
/// protocol failure, or the server's last word before closing it (PostgreSQL's connection
/// exception class 08 and administrator or crash shutdown 57P01–57P03; MariaDB's killed
/// connection, 70100).
fn connection_lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| {
            c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03" | "70100")
        }),
        _ => false,
    }
}
