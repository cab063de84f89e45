//! Write transactions, and SQLite's group commit.
//!
//! SQLite runs one write transaction at a time, and with `synchronous =
//! FULL` each commit waits for the disk (an fsync). This process writes
//! through one connection, and its write transactions share commits: each
//! [`WriteTransaction`] is a unit of the *group* that is open on the
//! connection (one `BEGIN IMMEDIATE` ... `COMMIT`): the unit that opens the
//! group is its transaction alone until it ends; each later one is a
//! savepoint in it. A unit that ends
//! while other writers wait for their turn leaves the group open for them;
//! the group commits when no writer waits, when it holds
//! [`GROUP_MAX_UNITS`] units, or when it is [`GROUP_MAX_AGE`] old, and
//! every unit's `commit` returns only once the group's commit did: what a
//! caller was told is committed is on disk, as with a commit of its own.
//!
//! What a unit reads may be the work of an earlier unit of its group that is
//! not on disk yet. That is safe for what a caller does after its unit ends
//! (the end waits for the group's commit, and so for every unit before it),
//! but not for a side effect inside the unit: a transaction that calls out
//! (the charge) on what it read begins with
//! [`super::Database::begin_write_settled`], which commits the open group
//! first, and commits its own group when it ends (nothing after it holds
//! its work up). A caller that acts on what a unit read must end the unit
//! with `commit` or `rollback` (which wait), not drop it: dropping does not
//! wait for the group.
//!
//! A unit's statements fail alone (`ROLLBACK TO` its savepoint, or the
//! group's ROLLBACK when it is the group's only unit); the group
//! fails as a whole only when the connection cannot go on (a failed
//! `RELEASE`, `ROLLBACK TO` or `COMMIT`: the disk, SQLite's own rollback),
//! and then every unit still waiting is told so. Beginning and ending a unit
//! run in tasks of their own, so a request future dropped halfway leaves the
//! group in a known state: an unfinished unit is rolled back (to its
//! savepoint, or with its group when it is the group's only unit) and the
//! group goes on.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sqlx::{AnyConnection, Executor};
use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};

/// The most units one group commits at once.
const GROUP_MAX_UNITS: usize = 128;
/// How long a group stays open for more units: past it, the next unit to
/// begin or end commits it, and so does a watch left by the unit that left
/// it open (the most a commit waits for others' work, beyond a unit that
/// holds the turn). Other processes get SQLite's write lock only between
/// groups: with a steady load here, once per group instead of once per
/// transaction, and SQLite's busy handler gives them no turn of their own.
const GROUP_MAX_AGE: Duration = Duration::from_millis(5);
/// How long a writer waits for its turn before giving up (as the pool's
/// acquire time-out).
const TURN_TIMEOUT: Duration = Duration::from_secs(10);

/// A transaction that writes (see [`super::Database::begin_write`]). It
/// derefs to the connection its statements run on; end it with
/// [`commit`](Self::commit) or [`rollback`](Self::rollback) (dropping it
/// rolls it back).
#[derive(Debug)]
pub struct WriteTransaction(Kind);

#[derive(Debug)]
enum Kind {
    /// PostgreSQL: a transaction on a connection of the pool.
    Pooled(sqlx::Transaction<'static, sqlx::Any>),
    /// SQLite: a unit of the writer's open group.
    Grouped(Unit),
}

impl WriteTransaction {
    pub(super) fn pooled(transaction: sqlx::Transaction<'static, sqlx::Any>) -> WriteTransaction {
        WriteTransaction(Kind::Pooled(transaction))
    }

    /// Commits: returns once the work is durable (on SQLite, once the group
    /// it is part of committed).
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self.0 {
            Kind::Pooled(transaction) => transaction.commit().await,
            Kind::Grouped(unit) => unit.end(End::Commit).await,
        }
    }

    /// Undoes the transaction's work. On SQLite it returns once what the
    /// transaction read is durable (the units before it in its group).
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self.0 {
            Kind::Pooled(transaction) => transaction.rollback().await,
            Kind::Grouped(unit) => unit.end(End::Rollback).await,
        }
    }
}

impl std::ops::Deref for WriteTransaction {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        match &self.0 {
            Kind::Pooled(transaction) => transaction,
            Kind::Grouped(unit) => &unit.turn().connection,
        }
    }
}

impl std::ops::DerefMut for WriteTransaction {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match &mut self.0 {
            Kind::Pooled(transaction) => transaction,
            Kind::Grouped(unit) => &mut unit.turn_mut().connection,
        }
    }
}

/// SQLite's one writer connection, whose writers take turns (in order) and
/// share commits.
#[derive(Clone)]
pub(super) struct GroupWriter {
    turn: Arc<Mutex<Turn>>,
    /// Writers waiting for their turn: while there are some, an ending unit
    /// leaves the group open for them.
    waiting: Arc<AtomicUsize>,
    /// The turn's count of committed groups.
    #[cfg_attr(not(test), allow(dead_code))]
    committed: Arc<AtomicU64>,
    /// [`GROUP_MAX_AGE`] and [`TURN_TIMEOUT`], in microseconds (the tests
    /// change them).
    max_age_micros: Arc<AtomicU64>,
    turn_timeout_micros: Arc<AtomicU64>,
}

impl std::fmt::Debug for GroupWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupWriter").field("waiting", &self.waiting.load(Ordering::Relaxed)).finish_non_exhaustive()
    }
}

/// The connection and its group, held by the writer whose turn it is.
struct Turn {
    connection: AnyConnection,
    /// How many groups committed (the tests count them).
    committed: Arc<AtomicU64>,
    group: Option<Group>,
    /// The id of the next group (a watch commits only the group it watches).
    next_group: u64,
    /// The unit that began and has not ended (it may have been dropped:
    /// the next writer rolls it back), and what undoes it.
    open_unit: Option<UnitScope>,
}

/// What a unit's work is, to undo it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UnitScope {
    /// The unit opened its group: the group's transaction holds its work
    /// alone (no savepoint: two statements fewer, and a unit that is the
    /// only one of its group, as one alone or the settled charge is, is
    /// undone with the group's ROLLBACK).
    Group,
    /// A later unit: its savepoint.
    Savepoint,
}

/// The open transaction of several units.
struct Group {
    id: u64,
    opened: Instant,
    /// A watch will commit the group if it is still open past its age.
    watched: bool,
    units: usize,
    /// The units that ended, waiting for the group's commit.
    waiters: Vec<oneshot::Sender<Result<(), Arc<str>>>>,
}

/// How a unit ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Commit,
    Rollback,
    /// Dropped without commit or rollback: rolled back, and nobody waits.
    Abandon,
}

impl GroupWriter {
    pub(super) fn new(connection: AnyConnection) -> GroupWriter {
        let committed = Arc::new(AtomicU64::new(0));
        GroupWriter {
            turn: Arc::new(Mutex::new(Turn {
                connection,
                committed: committed.clone(),
                group: None,
                next_group: 0,
                open_unit: None,
            })),
            waiting: Arc::new(AtomicUsize::new(0)),
            committed,
            max_age_micros: Arc::new(AtomicU64::new(GROUP_MAX_AGE.as_micros() as u64)),
            turn_timeout_micros: Arc::new(AtomicU64::new(TURN_TIMEOUT.as_micros() as u64)),
        }
    }

    /// How many groups have committed.
    #[cfg(test)]
    fn groups_committed(&self) -> u64 {
        self.committed.load(Ordering::Relaxed)
    }

    /// Changes the group age and the turn's time-out (tests).
    #[cfg(test)]
    fn set_limits(&self, max_age: Duration, turn_timeout: Duration) {
        self.max_age_micros.store(max_age.as_micros() as u64, Ordering::Relaxed);
        self.turn_timeout_micros.store(turn_timeout.as_micros() as u64, Ordering::Relaxed);
    }

    fn max_age(&self) -> Duration {
        Duration::from_micros(self.max_age_micros.load(Ordering::Relaxed))
    }

    fn is_full(&self, group: &Group) -> bool {
        group.units >= GROUP_MAX_UNITS || group.opened.elapsed() >= self.max_age()
    }

    /// Begins a unit once it is this writer's turn. `settled`: the open
    /// group commits first, so that everything the unit reads is durable.
    pub(super) async fn begin(&self, settled: bool) -> Result<WriteTransaction, sqlx::Error> {
        let writer = self.clone();
        let unit = tokio::spawn(async move { writer.begin_unit(settled).await })
            .await
            .map_err(|error| group_error(format!("the write transaction could not begin: {error}")))??;
        Ok(WriteTransaction(Kind::Grouped(unit)))
    }

    async fn begin_unit(self, settled: bool) -> Result<Unit, sqlx::Error> {
        let turn = {
            let _waiting = Waiting::enter(&self.waiting);
            let timeout = Duration::from_micros(self.turn_timeout_micros.load(Ordering::Relaxed));
            tokio::time::timeout(timeout, self.turn.clone().lock_owned())
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)?
        };
        // From here the unit owns the turn: if this task's caller is gone,
        // dropping the unit ends it (Abandon).
        let mut unit = Unit {
            turn: Some(turn),
            writer: self.clone(),
            settled,
        };
        let turn = unit.turn_mut();
        if turn.open_unit.is_some() {
            turn.roll_back_unit().await;
        }
        if turn.group.as_ref().is_some_and(|group| settled || self.is_full(group)) {
            turn.commit_group().await;
        }
        let scope = if turn.group.is_none() {
            if let Err(error) = turn.connection.execute("BEGIN IMMEDIATE").await {
                if !error.to_string().contains("within a transaction") {
                    return Err(error);
                }
                // A transaction left open on the connection (a ROLLBACK
                // that failed): end it, and begin again.
                tracing::warn!(%error, "the writer connection was still in a transaction: rolling it back");
                let _ = turn.connection.execute("ROLLBACK").await;
                turn.connection.execute("BEGIN IMMEDIATE").await?;
            }
            turn.next_group += 1;
            turn.group = Some(Group {
                id: turn.next_group,
                opened: Instant::now(),
                watched: false,
                units: 0,
                waiters: Vec::new(),
            });
            UnitScope::Group
        } else {
            if let Err(error) = turn.connection.execute("SAVEPOINT unit").await {
                turn.fail_group(&error).await;
                return Err(error);
            }
            UnitScope::Savepoint
        };
        turn.open_unit = Some(scope);
        if let Some(group) = &mut turn.group {
            group.units += 1;
        }
        Ok(unit)
    }
}

impl Turn {
    /// Undoes the open unit; the group goes on (or fails, if SQLite
    /// cannot), unless the unit was all of it.
    async fn roll_back_unit(&mut self) {
        match self.open_unit.take() {
            None => {}
            Some(UnitScope::Group) => {
                // Nothing else is in the group: nobody waits for it.
                self.group = None;
                if let Err(error) = self.connection.execute("ROLLBACK").await {
                    tracing::warn!(%error, "a write transaction could not be rolled back");
                }
            }
            Some(UnitScope::Savepoint) => {
                let undone = match self.connection.execute("ROLLBACK TO unit").await {
                    Ok(_) => self.connection.execute("RELEASE unit").await,
                    Err(error) => Err(error),
                };
                if let Err(error) = undone {
                    self.fail_group(&error).await;
                }
            }
        }
    }

    /// Commits the open group and tells its waiting units how it went.
    async fn commit_group(&mut self) {
        let Some(group) = self.group.take() else { return };
        let committed = match self.connection.execute("COMMIT").await {
            Ok(_) => {
                self.committed.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(error) => {
                // A failed COMMIT may leave the transaction open.
                let _ = self.connection.execute("ROLLBACK").await;
                tracing::error!(units = group.units, %error, "a group commit failed: none of its transactions is stored");
                Err(Arc::from(format!("the commit failed: {error}")))
            }
        };
        group.tell(committed);
    }

    /// Rolls the whole group back after `error`, and tells its waiting units.
    async fn fail_group(&mut self, error: &sqlx::Error) {
        self.open_unit = None;
        let Some(group) = self.group.take() else { return };
        let _ = self.connection.execute("ROLLBACK").await;
        tracing::error!(units = group.units, %error, "a group of write transactions is rolled back");
        group.tell(Err(Arc::from(format!("the transaction was rolled back with its group: {error}"))));
    }
}

impl Group {
    fn tell(self, result: Result<(), Arc<str>>) {
        for waiter in self.waiters {
            // A unit whose caller is gone no longer listens.
            let _ = waiter.send(result.clone());
        }
    }
}

/// One write transaction of the group: it holds the writer's turn until it
/// ends.
struct Unit {
    /// None once the unit has ended.
    turn: Option<OwnedMutexGuard<Turn>>,
    writer: GroupWriter,
    /// It began settled (it calls out on what it read): it also commits its
    /// group when it ends, so that what it did is not held up, or undone,
    /// by units after it.
    settled: bool,
}

impl std::fmt::Debug for Unit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unit").field("ended", &self.turn.is_none()).finish_non_exhaustive()
    }
}

impl Unit {
    fn turn(&self) -> &Turn {
        self.turn.as_ref().expect("a unit holds its turn until it ends")
    }

    fn turn_mut(&mut self) -> &mut Turn {
        self.turn.as_mut().expect("a unit holds its turn until it ends")
    }

    /// Ends the unit in a task of its own, then waits for its group's
    /// commit (for a commit and a rollback alike: see the module's doc).
    async fn end(mut self, end: End) -> Result<(), sqlx::Error> {
        let Some(turn) = self.turn.take() else { return Ok(()) };
        let (waiter, committed) = oneshot::channel();
        let ended = tokio::spawn(end_unit(turn, self.writer.clone(), end, self.settled, Some(waiter)));
        let released = ended
            .await
            .map_err(|error| group_error(format!("the write transaction could not end: {error}")))?;
        released?;
        match committed.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(group_error(message.to_string())),
            Err(_) => Err(group_error("the group of the write transaction ended without a word".into())),
        }
    }
}

impl Drop for Unit {
    fn drop(&mut self) {
        let Some(turn) = self.turn.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(end_unit(turn, self.writer.clone(), End::Abandon, self.settled, None));
            }
            // No runtime to end it on: the next writer rolls it back when it
            // takes its turn.
            Err(_) => drop(turn),
        }
    }
}

/// Ends the unit that holds `turn` and, unless other writers wait for
/// their turn (and the group has room, and the unit is not settled),
/// commits the group; a group left open is watched. `waiter` hears how the
/// group's commit went. An error is the unit's own (its RELEASE failed);
/// the group's comes through `waiter`.
async fn end_unit(
    mut turn: OwnedMutexGuard<Turn>,
    writer: GroupWriter,
    end: End,
    settled: bool,
    waiter: Option<oneshot::Sender<Result<(), Arc<str>>>>,
) -> Result<(), sqlx::Error> {
    let mut outcome = Ok(());
    match (end, turn.open_unit) {
        (_, None) => {}
        (End::Commit, Some(UnitScope::Group)) => turn.open_unit = None,
        (End::Commit, Some(UnitScope::Savepoint)) => {
            turn.open_unit = None;
            if let Err(error) = turn.connection.execute("RELEASE unit").await {
                turn.fail_group(&error).await;
                outcome = Err(error);
            }
        }
        (End::Rollback | End::Abandon, Some(_)) => turn.roll_back_unit().await,
    }
    match (&mut turn.group, waiter) {
        (Some(group), Some(waiter)) if outcome.is_ok() => group.waiters.push(waiter),
        // The group failed: the caller hears the unit's error.
        (_, Some(waiter)) if outcome.is_err() => drop(waiter),
        // No group to wait for (it failed with this unit's end).
        (_, Some(waiter)) => {
            let _ = waiter.send(if end == End::Commit {
                Err(Arc::from("the transaction was rolled back with its group"))
            } else {
                Ok(())
            });
        }
        (_, None) => {}
    }
    let last = writer.waiting.load(Ordering::Acquire) == 0;
    if turn.group.as_ref().is_some_and(|group| settled || last || writer.is_full(group)) {
        turn.commit_group().await;
    }
    // Left open for the writers that wait: should they all give up (their
    // turn's time-out), the watch commits it.
    if let Some(group) = turn.group.as_mut().filter(|group| !group.watched) {
        group.watched = true;
        tokio::spawn(watch(writer.clone(), group.id));
    }
    outcome
}

/// Commits group `id` if it is still open once it is past its age (and
/// rolls back a unit dropped where no runtime could end it).
async fn watch(writer: GroupWriter, id: u64) {
    tokio::time::sleep(writer.max_age()).await;
    // Not counted among the waiting writers: a unit that ends meanwhile
    // commits as if the watch were not there.
    let mut turn = writer.turn.clone().lock_owned().await;
    if turn.group.as_ref().is_some_and(|group| group.id == id) {
        if turn.open_unit.is_some() {
            turn.roll_back_unit().await;
        }
        if turn.group.as_ref().is_some_and(|group| group.id == id) {
            turn.commit_group().await;
        }
    }
}

/// An error of the group's own (not of a statement), as the callers' sqlx error.
fn group_error(message: String) -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::other(message))
}

/// Counts a writer waiting for its turn for as long as it waits.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(waiting: &'a AtomicUsize) -> Waiting<'a> {
        waiting.fetch_add(1, Ordering::AcqRel);
        Waiting(waiting)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sqlx::Executor;

    use super::super::Database;
    use crate::settings::SqliteSynchronous;

    /// A database whose groups stay open for a minute (the tests decide
    /// when units end, however slow the machine).
    async fn database(dir: &tempfile::TempDir) -> Database {
        let url = format!("sqlite://{}", dir.path().join("group.db").display());
        let database = Database::connect(&url, 2, SqliteSynchronous::Full).await.expect("connect");
        database.pool().execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)").await.expect("table");
        writer(&database).set_limits(Duration::from_secs(60), Duration::from_secs(60));
        database
    }

    fn writer(database: &Database) -> &super::GroupWriter {
        database.writer.as_ref().expect("SQLite has a writer")
    }

    async fn rows(database: &Database) -> Vec<i64> {
        sqlx::query_scalar("SELECT id FROM t ORDER BY id").fetch_all(database.pool()).await.expect("rows")
    }

    async fn insert(transaction: &mut super::WriteTransaction, id: i64) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO t (id, v) VALUES ($1, 'x')").bind(id).execute(&mut **transaction).await.map(|_| ())
    }

    /// A write transaction that has inserted `id`.
    async fn begun_with(database: &Database, id: i64) -> super::WriteTransaction {
        let mut transaction = database.begin_write().await.expect("begin");
        insert(&mut transaction, id).await.expect("insert");
        transaction
    }

    /// A writer, in a task of its own, that inserts `id` and commits.
    fn spawn_commit(database: &Database, id: i64) -> tokio::task::JoinHandle<()> {
        let database = database.clone();
        tokio::spawn(async move { begun_with(&database, id).await.commit().await.expect("commit") })
    }

    /// Waits until `count` writers wait for their turn (they queue behind
    /// the unit the test holds open).
    async fn until_waiting(database: &Database, count: usize) {
        let waiting = async {
            while writer(database).waiting.load(std::sync::atomic::Ordering::Acquire) < count {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), waiting).await.expect("the writers queue");
    }

    fn commits(database: &Database) -> u64 {
        writer(database).groups_committed()
    }

    /// Writers that queue behind an open transaction share its commit: one
    /// COMMIT for eleven transactions, each of which returns only after it,
    /// and none of whose work another connection sees before it.
    #[tokio::test]
    async fn transactions_that_end_while_others_wait_share_one_commit() {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = database(&dir).await;
        let before = commits(&database);
        let first = begun_with(&database, 1).await;
        let others: Vec<_> = (2..=11)
            .map(|id| {
                let database = database.clone();
                tokio::spawn(async move {
                    begun_with(&database, id).await.commit().await.expect("commit");
                    // Committed means visible to every other connection.
                    let seen: Vec<i64> = sqlx::query_scalar("SELECT id FROM t WHERE id = $1")
                        .bind(id)
                        .fetch_all(database.pool())
                        .await
                        .expect("read");
                    assert_eq!(seen, [id]);
                })
            })
            .collect();
        until_waiting(&database, 10).await;
        assert_eq!(rows(&database).await, Vec::<i64>::new(), "nothing is visible before the commit");
        first.commit().await.expect("commit");
        for other in others {
            other.await.expect("a writer");
        }
        assert_eq!(rows(&database).await, (1..=11).collect::<Vec<_>>());
        assert_eq!(commits(&database) - before, 1, "one commit for the eleven transactions");
    }

    /// A transaction of a group that fails a statement, one that rolls back
    /// and one that is dropped undo only their own work; the others of the
    /// group commit.
    #[tokio::test]
    async fn a_failed_rolled_back_or_dropped_transaction_undoes_only_its_own_work() {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = database(&dir).await;
        let first = begun_with(&database, 1).await;
        let spawn = |ids: &'static [i64], end: &'static str| {
            let database = database.clone();
            tokio::spawn(async move {
                let mut transaction = database.begin_write().await.expect("begin");
                for id in ids {
                    if insert(&mut transaction, *id).await.is_err() {
                        // A unique violation: the transaction's earlier work goes too.
                        return transaction.rollback().await.expect("rollback");
                    }
                }
                match end {
                    "commit" => transaction.commit().await.expect("commit"),
                    "rollback" => transaction.rollback().await.expect("rollback"),
                    _ => drop(transaction),
                }
            })
        };
        let before = commits(&database);
        let tasks = [spawn(&[2, 3], "commit"), spawn(&[4, 1], "commit"), spawn(&[5], "rollback"), spawn(&[6], "drop"), spawn(&[7], "commit")];
        until_waiting(&database, tasks.len()).await;
        first.commit().await.expect("commit");
        for task in tasks {
            task.await.expect("a writer");
        }
        assert_eq!(rows(&database).await, [1, 2, 3, 7]);
        assert_eq!(commits(&database) - before, 1, "all six were units of one group");
    }

    /// The unit that opened the group (no savepoint) is undone alone when
    /// it rolls back or is dropped: the writers that queued behind it
    /// commit in a new group.
    #[tokio::test]
    async fn the_first_transaction_of_a_group_rolls_back_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = database(&dir).await;
        for (id, end) in [(2, "rollback"), (3, "drop")] {
            let first = begun_with(&database, id * 10).await;
            let next = spawn_commit(&database, id);
            until_waiting(&database, 1).await;
            match end {
                "rollback" => first.rollback().await.expect("rollback"),
                _ => drop(first),
            }
            next.await.expect("the next writer");
        }
        assert_eq!(rows(&database).await, [2, 3]);
    }

    /// When the group cannot go on (here a transaction ends SQLite's
    /// transaction under the group), every transaction waiting for its
    /// commit hears that it failed, and the next writer starts a new group.
    #[tokio::test]
    async fn every_transaction_of_a_failed_group_hears_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = database(&dir).await;
        let first = begun_with(&database, 1).await;
        let breaker = {
            let database = database.clone();
            tokio::spawn(async move {
                let mut transaction = database.begin_write().await.expect("begin");
                (&mut *transaction).execute("ROLLBACK").await.expect("rollback under the group");
                transaction.commit().await
            })
        };
        until_waiting(&database, 1).await;
        let first_committed = tokio::spawn(first.commit());
        assert!(breaker.await.expect("the breaker").is_err(), "its own RELEASE fails");
        let error = first_committed.await.expect("the first").expect_err("the group did not commit");
        assert!(error.to_string().contains("rolled back with its group"), "{error}");
        assert_eq!(rows(&database).await, Vec::<i64>::new());
        begun_with(&database, 2).await.commit().await.expect("a new group");
        assert_eq!(rows(&database).await, [2]);
    }

    /// A settled transaction commits the open group before it begins: what
    /// it reads is on disk.
    #[tokio::test]
    async fn a_settled_transaction_begins_after_the_open_group_committed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = database(&dir).await;
        let first = begun_with(&database, 1).await;
        let second = spawn_commit(&database, 2);
        until_waiting(&database, 1).await;
        let settled = {
            let database = database.clone();
            tokio::spawn(async move {
                let transaction = database.begin_write_settled().await.expect("begin");
                // Another connection sees the group's work: it is committed.
                let seen = rows(&database).await;
                transaction.rollback().await.expect("rollback");
                seen
            })
        };
        until_waiting(&database, 2).await;
        let before = commits(&database);
        first.commit().await.expect("commit");
        second.await.expect("second");
        assert_eq!(settled.await.expect("settled"), [1, 2]);
        assert_eq!(commits(&database) - before, 1, "the group of the first two (the settled one's rolls back)");
        tokio::time::timeout(Duration::from_secs(10), database.begin_write()).await.expect("the turn is free").expect("begin");
    }

    /// A unit that read another's work and rolls back returns only once
    /// that work is committed: a caller may then act on what it read (the
    /// checkout replay reads the order it found through the pool).
    #[tokio::test]
    async fn a_rollback_returns_once_what_the_unit_read_is_committed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = database(&dir).await;
        let first = begun_with(&database, 1).await;
        let reader = {
            let database = database.clone();
            tokio::spawn(async move {
                let mut transaction = database.begin_write().await.expect("begin");
                let seen: Vec<i64> = sqlx::query_scalar("SELECT id FROM t").fetch_all(&mut *transaction).await.expect("read");
                transaction.rollback().await.expect("rollback");
                (seen, rows(&database).await)
            })
        };
        until_waiting(&database, 1).await;
        // A writer after the reader: the group commits when it ends, not
        // when the reader does.
        let last = spawn_commit(&database, 3);
        until_waiting(&database, 2).await;
        first.commit().await.expect("commit");
        last.await.expect("the last writer");
        let (seen, committed) = reader.await.expect("the reader");
        assert_eq!(seen, [1], "the unit read the first one's work, not yet committed");
        assert_eq!(committed, [1, 3], "after its rollback, every connection sees what it read");
    }

    /// A group left open for writers that then all give up waiting (their
    /// turn's time-out: here one counted as waiting that leaves) is
    /// committed by the watch its last unit left, past the group's age:
    /// nobody's commit waits forever.
    #[tokio::test]
    async fn a_group_left_open_for_writers_that_gave_up_is_committed_by_its_watch() {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = database(&dir).await;
        writer(&database).set_limits(Duration::from_millis(20), Duration::from_secs(60));
        let first = begun_with(&database, 1).await;
        let gone = super::Waiting::enter(&writer(&database).waiting);
        let committed = tokio::spawn(first.commit());
        // The commit is left for the writer that waits (the unit has ended
        // once the turn is free), which gives up without taking its turn.
        while writer(&database).turn.try_lock().is_err() {
            tokio::task::yield_now().await;
        }
        drop(gone);
        tokio::time::timeout(Duration::from_secs(30), committed)
            .await
            .expect("the watch commits the group")
            .expect("the commit's task")
            .expect("committed");
        assert_eq!(rows(&database).await, [1]);
    }
}
