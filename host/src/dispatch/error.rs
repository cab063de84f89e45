use crate::model::{LineId, OrderStatus, TransitionError};

/// Why dispatch refused to run or could not finish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DispatchError {
    /// Only `Open` and `Fulfillment Error` orders are fulfillable.
    #[error("order {number} is not fulfillable: its status is `{status}`")]
    NotFulfillable { number: String, status: OrderStatus },
    /// The order has no line with that id.
    #[error("order {number} has no line {line_id}")]
    UnknownLine { number: String, line_id: LineId },
    /// The line was never fulfilled by a module, so none can revoke it.
    #[error("line {line_id} of order {number} has no fulfilling module to revoke it")]
    NotFulfilled { number: String, line_id: LineId },
    /// The module that fulfilled the line is not loaded now.
    #[error("line {line_id} of order {number} was fulfilled by module `{module}`, which is not loaded")]
    ModuleNotLoaded {
        number: String,
        line_id: LineId,
        module: String,
    },
    /// A status change the pipeline forbids: a bug in the host, never a
    /// module's doing (modules only ever see lines that may change).
    #[error(transparent)]
    Transition(#[from] TransitionError),
}
