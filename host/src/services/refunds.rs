//! Refunds: created for lines of a Complete order; approving one records
//! the credit as intended and queues the refund's job, which credits the
//! payment (with the refund's idempotency key at the processor), records
//! the credit with the refund's new status in one transaction, then revokes
//! each line through the module that fulfilled it, leaving a note on the
//! order for staff per line (revoked, not revoked and why, or skipped and
//! why) and one when the credit is refused. Statuses follow the
//! reference's refund pipelines ([`RefundStatus`]).
//!
//! Every decision about a refund is taken with its row held (a row lock on
//! PostgreSQL, the write lock on SQLite), so approvals from any host run
//! one at a time; the credit never exceeds what was captured less what was
//! refunded or is being refunded.

use std::sync::Arc;

use super::OrderError;
use crate::dispatch;
use crate::model::{LineId, Money, NoteKind, OrderNote, OrderStatus, RefundLineStatus, RefundStatus};
use crate::payments::{PaymentError, Payments};
use crate::queue::JobQueue;
use crate::runtime::{RevokeResult, Runtime};
use crate::storage::{
    self, ClaimedJob, CreditState, Database, JobKind, JobState, JobUpdate, OrderScope, RefundLineRecord, RefundRecord,
};

/// What staff decide about a refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefundAction {
    /// Credit the payment, then revoke each line.
    Approve,
    /// Credit the payment; the lines are not revoked.
    ApprovePaymentOnly,
    /// Refuse (only an Open refund).
    Deny,
}

/// What processing a refund gave.
#[derive(Debug)]
pub enum Processed {
    /// Nothing is left to run: the refund as it stands.
    Settled(RefundRecord),
    /// Its job, leased to this host, for the executor to run now.
    Run(ClaimedJob),
    /// Its job is running (here or on another host): the refund as it stands.
    InProgress(RefundRecord),
}

/// Creates, approves, denies and carries out refunds.
#[derive(Clone)]
pub struct RefundService {
    db: Database,
    runtime: Arc<Runtime>,
    payments: Payments,
    queue: JobQueue,
}

impl RefundService {
    pub fn new(db: Database, runtime: Arc<Runtime>, payments: Payments, queue: JobQueue) -> RefundService {
        RefundService {
            db,
            runtime,
            payments,
            queue,
        }
    }

    /// Refund `id`, if `scope` covers its order (not found if not).
    pub async fn refund(&self, scope: &OrderScope, id: i64) -> Result<RefundRecord, OrderError> {
        let mut connection = self.db.pool().acquire().await?;
        let refund = storage::load_refund(&mut connection, id)
            .await?
            .ok_or_else(|| OrderError::NotFound(format!("refund {id}")))?;
        super::orders::require_in_scope(&mut connection, scope, &refund.order_number)
            .await
            .map_err(|error| refund_not_found(error, id))?;
        Ok(refund)
    }

    /// Page `page` (from 1) of `page_size` refunds of order `number`,
    /// newest first, and how many it has; not found unless `scope` covers
    /// the order.
    pub async fn refunds_of_order(
        &self,
        scope: &OrderScope,
        number: &str,
        page: u64,
        page_size: u64,
    ) -> Result<(u64, Vec<RefundRecord>), OrderError> {
        let mut connection = self.db.pool().acquire().await?;
        super::orders::require_in_scope(&mut connection, scope, number).await?;
        let found = storage::refunds_of_order(&mut connection, number, page, page_size)
            .await?
            .ok_or_else(|| OrderError::NotFound(format!("order {number}")))?;
        Ok((found.count, found.refunds))
    }

    /// Creates an `Open` refund for `line_ids` of the Complete order
    /// `number`, if `scope` covers it.
    pub async fn create_refund(&self, scope: &OrderScope, number: &str, line_ids: &[LineId]) -> Result<RefundRecord, OrderError> {
        if line_ids.is_empty() {
            return Err(OrderError::invalid("line_ids", "name at least one line"));
        }
        let mut transaction = self.db.begin_write().await?;
        let stored = storage::load_order(&mut transaction, number)
            .await?
            .filter(|stored| scope.covers(stored))
            .ok_or_else(|| OrderError::NotFound(format!("order {number}")))?;
        // One refund of an order is created at a time, from any host.
        storage::hold_order(&mut transaction, stored.id).await?;
        if stored.order.status != OrderStatus::Complete {
            return Err(OrderError::Conflict(format!(
                "order {number} is `{}`: only Complete orders can be refunded",
                stored.order.status
            )));
        }
        let mut lines: Vec<RefundLineRecord> = Vec::with_capacity(line_ids.len());
        for (index, line_id) in line_ids.iter().enumerate() {
            let field = format!("line_ids[{index}]");
            let line = stored
                .order
                .line(*line_id)
                .ok_or_else(|| OrderError::invalid(&field, format!("order {number} has no line {line_id}")))?;
            if lines.iter().any(|earlier| earlier.line_id == *line_id)
                || storage::line_in_refund(&mut transaction, stored.id, *line_id).await?
            {
                return Err(OrderError::Conflict(format!("line {line_id} of order {number} is already being refunded")));
            }
            let amount = line
                .unit_price
                .checked_mul(line.quantity)
                .map_err(|error| OrderError::invalid(&field, error.to_string()))?;
            if amount.minor_units < 0 {
                return Err(OrderError::invalid(&field, "a line with a negative price cannot be refunded"));
            }
            lines.push(RefundLineRecord {
                line_id: *line_id,
                status: RefundLineStatus::Open,
                amount_minor: amount.minor_units,
                reason: None,
            });
        }
        let total_minor = lines
            .iter()
            .try_fold(0_i64, |sum, line| sum.checked_add(line.amount_minor))
            .ok_or_else(|| OrderError::invalid("line_ids", "the refund's total is out of range"))?;
        let mut refund = RefundRecord {
            id: 0,
            order_id: stored.id,
            order_number: number.to_string(),
            status: RefundStatus::Open,
            total_minor,
            currency: stored.order.currency.code().to_string(),
            credit: CreditState::None,
            credit_minor: 0,
            credit_reference: None,
            revoke: true,
            lines,
        };
        refund.id = storage::insert_refund(&mut transaction, &refund).await?;
        transaction.commit().await?;
        Ok(refund)
    }

    /// Takes staff's decision on refund `id` (not found unless `scope`
    /// covers its order), with the refund held: a denial
    /// is stored at once; an approval records the credit as intended and
    /// queues the refund's job (leased to this host, to run now). Repeating
    /// a decision already carried out changes nothing (`approve` on a
    /// Complete refund, `deny` on a Denied one).
    pub async fn process(&self, scope: &OrderScope, id: i64, action: RefundAction) -> Result<Processed, OrderError> {
        let mut transaction = self.db.begin_write().await?;
        let mut refund = storage::hold_refund(&mut transaction, id)
            .await?
            .ok_or_else(|| OrderError::NotFound(format!("refund {id}")))?;
        super::orders::require_in_scope(&mut transaction, scope, &refund.order_number)
            .await
            .map_err(|error| refund_not_found(error, id))?;
        let job = storage::job_of(&mut transaction, self.db.backend(), JobKind::Refund, id).await?;
        // What is answered from a read, the transaction ended first (it
        // waits until what it read is committed).
        if job.as_ref().is_some_and(|job| job.leased) {
            transaction.rollback().await?;
            return Ok(Processed::InProgress(refund));
        }
        use RefundAction::*;
        use RefundStatus::*;
        match (action, refund.status) {
            // A credit that may have gone through cannot be denied.
            (Deny, Open) if refund.credit == CreditState::Intended => Err(OrderError::Conflict(format!(
                "refund {id}'s credit was asked of the processor: it cannot be denied now; approve it to finish it"
            ))),
            (Deny, Open) => {
                refund.status.transition(Denied)?;
                for line in &mut refund.lines {
                    line.status.transition(RefundLineStatus::Denied)?;
                }
                storage::update_refund(&mut transaction, &refund).await?;
                transaction.commit().await?;
                Ok(Processed::Settled(refund))
            }
            (Deny, Denied) | (Approve, Complete) | (ApprovePaymentOnly, Complete) => {
                transaction.rollback().await?;
                Ok(Processed::Settled(refund))
            }
            (Approve | ApprovePaymentOnly, Open | PaymentRefundError) => {
                self.intend_credit(&mut transaction, &mut refund).await?;
                refund.revoke = action == Approve;
                storage::update_refund(&mut transaction, &refund).await?;
                let job = self.lease_job(&mut transaction, &refund, job.map(|job| job.id)).await?;
                transaction.commit().await?;
                Ok(Processed::Run(job))
            }
            // The credit is done; the revocations are left (again).
            (Approve, PaymentRefunded | RevocationError) => {
                refund.revoke = true;
                storage::update_refund(&mut transaction, &refund).await?;
                let job = self.lease_job(&mut transaction, &refund, job.map(|job| job.id)).await?;
                transaction.commit().await?;
                Ok(Processed::Run(job))
            }
            (_, status) => Err(OrderError::Conflict(format!(
                "refund {id} is `{status}`: it cannot be {} now",
                match action {
                    Approve => "approved",
                    ApprovePaymentOnly => "approved for payment only",
                    Deny => "denied",
                }
            ))),
        }
    }

    /// Records refund's credit as intended, after checking it against what
    /// is left of the payment.
    async fn intend_credit(&self, transaction: &mut sqlx::AnyConnection, refund: &mut RefundRecord) -> Result<(), OrderError> {
        // The credits of one order are decided one at a time, from any host.
        storage::hold_order(transaction, refund.order_id).await?;
        let number = refund.order_number.clone();
        let stored = storage::load_order(transaction, &number)
            .await?
            .ok_or_else(|| OrderError::NotFound(format!("order {number}")))?;
        if let Some(source_id) = stored.payment_source_id {
            let payment = storage::payment_for_order(transaction, source_id).await?;
            let taken = storage::credits_taken(transaction, refund.order_id, source_id, refund.id).await?;
            let left = payment.amount_minor - taken;
            if refund.total_minor > left {
                let decimal = |minor_units| Money { minor_units, currency: stored.order.currency }.to_decimal_string();
                return Err(OrderError::Conflict(format!(
                    "refund {} would credit {}, but only {} of the payment of {} is left to refund",
                    refund.id,
                    decimal(refund.total_minor),
                    decimal(left.max(0)),
                    decimal(payment.amount_minor)
                )));
            }
        }
        refund.credit = CreditState::Intended;
        refund.credit_minor = refund.total_minor;
        Ok(())
    }

    /// Queues refund's job leased to this host (or leases and requeues the
    /// one it has).
    async fn lease_job(
        &self,
        transaction: &mut sqlx::AnyConnection,
        refund: &RefundRecord,
        existing: Option<i64>,
    ) -> Result<ClaimedJob, OrderError> {
        let number = Some(refund.order_number.as_str());
        let Some(id) = existing else {
            return Ok(self.queue.enqueue_leased(transaction, JobKind::Refund, refund.id, number).await?);
        };
        self.queue.make_due_now(transaction, JobKind::Refund, refund.id).await?;
        self.queue
            .lease(transaction, id)
            .await?
            .ok_or_else(|| OrderError::Conflict(format!("refund {} is being processed right now", refund.id)))
    }

    /// Runs refund `job` (whose lease this host holds): the credit if it is
    /// intended, then the revocations that are left.
    pub async fn run(&self, job: &ClaimedJob) -> Result<(), OrderError> {
        let refund = self.refund(&OrderScope::all(), job.subject_id).await?;
        let refund = if refund.credit == CreditState::Intended {
            match self.credit(job, refund).await? {
                Some(refund) => refund,
                None => return Ok(()),
            }
        } else {
            refund
        };
        self.revoke(job, refund).await
    }

    /// Credits the payment; stores the credit with the refund's new status
    /// (and, when the processor refused, ends the job). None when the job
    /// ended here.
    async fn credit(&self, job: &ClaimedJob, mut refund: RefundRecord) -> Result<Option<RefundRecord>, OrderError> {
        let stored = {
            let mut connection = self.db.pool().acquire().await?;
            storage::load_order(&mut connection, &refund.order_number)
                .await?
                .ok_or_else(|| OrderError::NotFound(format!("order {}", refund.order_number)))?
        };
        let payment = match stored.payment_source_id {
            Some(source_id) if refund.credit_minor > 0 => {
                let mut connection = self.db.pool().acquire().await?;
                Some(storage::payment_for_order(&mut connection, source_id).await?)
            }
            _ => None,
        };
        let credited = match &payment {
            Some(payment) => {
                let amount = Money {
                    minor_units: refund.credit_minor,
                    currency: stored.order.currency,
                };
                self.payments
                    .credit(&payment.processor, &payment.reference, amount, &format!("refund-{}", refund.id))
                    .map(|receipt| Some(receipt.reference))
            }
            None => Ok(None),
        };
        let mut transaction = self.db.begin_write().await?;
        let current = storage::hold_refund(&mut transaction, refund.id)
            .await?
            .ok_or_else(|| OrderError::NotFound(format!("refund {}", refund.id)))?;
        if !self.queue.renew(&mut transaction, job).await? {
            transaction.rollback().await?;
            return Err(lost_lease(job));
        }
        if current.credit != CreditState::Intended {
            // Stored meanwhile by the host that took the job over.
            return Ok(Some(current));
        }
        let ended = match credited {
            Ok(reference) => {
                if let (Some(payment), Some(reference)) = (&payment, &reference) {
                    storage::insert_payment_event(&mut transaction, payment.id, "Refunded", refund.credit_minor, reference)
                        .await?;
                }
                refund.credit = CreditState::Done;
                refund.credit_reference = reference;
                refund.status.transition(RefundStatus::PaymentRefunded)?;
                false
            }
            // The processor may have credited before it failed: the credit
            // stays intended, and the job asks again with the same key.
            Err(error @ PaymentError::Processor(_)) => {
                transaction.rollback().await?;
                return Err(error.into());
            }
            // Refused: nothing moved.
            Err(error) => {
                tracing::warn!(refund = refund.id, %error, "credit refused");
                refund.credit = CreditState::Failed;
                refund.status.transition(RefundStatus::PaymentRefundError)?;
                let mut stored = stored;
                stored.order.notes.push(OrderNote {
                    kind: NoteKind::Error,
                    message: format!("refund {}: the credit was refused ({error}); no line was revoked", refund.id),
                    line_id: None,
                    module: None,
                });
                storage::save_notes(&mut transaction, &mut stored).await?;
                true
            }
        };
        storage::update_refund(&mut transaction, &refund).await?;
        if ended {
            self.finish(transaction, job, JobState::Failed, Some("the processor refused the credit".into())).await?;
            return Ok(None);
        }
        transaction.commit().await?;
        Ok(Some(refund))
    }

    /// Revokes each line that is not revoked yet (none for a refund of 0 or
    /// one approved for payment only); the refund becomes `Complete` when
    /// all are, else `Revocation Error`. Stores it and ends the job.
    async fn revoke(&self, job: &ClaimedJob, mut refund: RefundRecord) -> Result<(), OrderError> {
        if !matches!(refund.status, RefundStatus::PaymentRefunded | RefundStatus::RevocationError) {
            let transaction = self.db.begin_write().await?;
            return self.finish(transaction, job, JobState::Done, None).await;
        }
        let skip_revocation = refund.total_minor == 0 || !refund.revoke;
        let mut stored = {
            let mut connection = self.db.pool().acquire().await?;
            storage::load_order(&mut connection, &refund.order_number)
                .await?
                .ok_or_else(|| OrderError::NotFound(format!("order {}", refund.order_number)))?
        };
        let mut notes = Vec::new();
        for line in &mut refund.lines {
            if line.status == RefundLineStatus::Complete {
                continue;
            }
            let module = stored.order.line(line.line_id).and_then(|ordered| ordered.fulfilled_by.clone());
            let (status, reason) = if skip_revocation {
                let why = if refund.revoke { "nothing to revoke: the refund is of 0" } else { "approved for payment only" };
                notes.push(trace(refund.id, line.line_id, module, NoteKind::Info, format!("skipped: {why}")));
                (RefundLineStatus::Complete, (!refund.revoke).then(|| "approved for payment only: not revoked".to_string()))
            } else {
                let by = module.as_deref().map(|name| format!(" by module `{name}`")).unwrap_or_default();
                match dispatch::revoke_line(&self.runtime, &stored.order, line.line_id, refund.id.unsigned_abs()).await {
                    Ok(RevokeResult::Revoked { note }) => {
                        let said = note.as_deref().map(|note| format!(" ({note})")).unwrap_or_default();
                        notes.push(trace(refund.id, line.line_id, module, NoteKind::Info, format!("revoked{by}{said}")));
                        (RefundLineStatus::Complete, note)
                    }
                    Ok(RevokeResult::NotRevoked { reason }) => {
                        notes.push(trace(refund.id, line.line_id, module, NoteKind::Error, format!("not revoked{by}: {reason}")));
                        (RefundLineStatus::RevocationError, Some(reason))
                    }
                    Err(error) => {
                        notes.push(trace(refund.id, line.line_id, module, NoteKind::Error, format!("not revoked: {error}")));
                        (RefundLineStatus::RevocationError, Some(error.to_string()))
                    }
                }
            };
            line.status.transition(status)?;
            line.reason = reason;
        }
        let all_revoked = refund.lines.iter().all(|line| line.status == RefundLineStatus::Complete);
        refund.status.transition(if all_revoked { RefundStatus::Complete } else { RefundStatus::RevocationError })?;
        let mut transaction = self.db.begin_write().await?;
        storage::hold_refund(&mut transaction, refund.id).await?;
        storage::update_refund(&mut transaction, &refund).await?;
        // The trace for staff, stored with the outcome it tells of.
        stored.order.notes.extend(notes);
        storage::save_notes(&mut transaction, &mut stored).await?;
        let (state, error) = if all_revoked {
            (JobState::Done, None)
        } else {
            (JobState::Failed, Some("some lines were not revoked".to_string()))
        };
        self.finish(transaction, job, state, error).await
    }

    /// Ends the job in `transaction` and commits it, if the lease is still
    /// this host's.
    async fn finish(
        &self,
        mut transaction: storage::WriteTransaction,
        job: &ClaimedJob,
        state: JobState,
        last_error: Option<String>,
    ) -> Result<(), OrderError> {
        let update = JobUpdate {
            state,
            attempts: job.attempts,
            retry_in_ms: 0,
            last_error,
        };
        if !self.queue.finish(&mut transaction, job, &update).await? {
            transaction.rollback().await?;
            return Err(lost_lease(job));
        }
        transaction.commit().await?;
        Ok(())
    }
}

/// A note for staff on what refund `refund_id` did to line `line_id`.
fn trace(refund_id: i64, line_id: LineId, module: Option<String>, kind: NoteKind, outcome: String) -> OrderNote {
    OrderNote {
        kind,
        message: format!("refund {refund_id}: line {line_id} {outcome}"),
        line_id: Some(line_id),
        module,
    }
}

/// A refund whose order is outside the caller's scope is not found either.
fn refund_not_found(error: OrderError, id: i64) -> OrderError {
    match error {
        OrderError::NotFound(_) => OrderError::NotFound(format!("refund {id}")),
        other => other,
    }
}

fn lost_lease(job: &ClaimedJob) -> OrderError {
    OrderError::Conflict(format!(
        "the lease of refund {}'s job was lost to another host; this run is not stored",
        job.subject_id
    ))
}
