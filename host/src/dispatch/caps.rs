//! What a module may keep on an order, checked before anything of its answer
//! is applied (and so before anything is stored): the `[modules.limits]`
//! caps `line_attributes_bytes`, `order_attributes_bytes` and `note_bytes`.

use std::collections::{BTreeMap, HashSet};

use crate::model::{LineId, LineStatus, Order};
use crate::runtime::{LineResult, RevokeResult, Runtime};
use crate::settings::ModuleLimits;
use crate::text::truncated;

/// The bytes of a set of attributes: names and values.
fn attribute_bytes(attributes: &BTreeMap<String, String>) -> usize {
    attributes.iter().map(|(name, value)| name.len() + value.len()).sum()
}

/// `answers` of `module` for its lines of `order`, with every completion
/// that would keep more attributes than the module's caps allow turned into
/// a `Fulfillment Server Error` naming the limit, and notes and messages
/// cut to `note_bytes`. Other lines and other modules are not affected.
pub(super) fn bounded(
    runtime: &Runtime,
    order: &Order,
    module: &str,
    answers: Vec<(LineId, LineResult)>,
) -> Vec<(LineId, LineResult)> {
    let limits = runtime.module(module).map(|loaded| loaded.limits().clone()).unwrap_or_default();
    let answered: HashSet<LineId> = answers.iter().map(|(line_id, _)| *line_id).collect();
    let stored = |line_id: LineId| order.line(line_id).map_or(0, |line| attribute_bytes(&line.attributes));
    // What the module already keeps on the order's other lines.
    let mut total: usize = order
        .lines
        .iter()
        .filter(|line| line.fulfilled_by.as_deref() == Some(module) && !answered.contains(&line.id))
        .map(|line| attribute_bytes(&line.attributes))
        .sum();
    // A failed line keeps what it had.
    total += answers
        .iter()
        .filter(|(_, result)| matches!(result, LineResult::Failed { .. }))
        .map(|(line_id, _)| stored(*line_id))
        .sum::<usize>();
    answers
        .into_iter()
        .map(|(line_id, result)| {
            let result = match result {
                LineResult::Complete { attributes, note } => {
                    let mut merged = order.line(line_id).map(|line| line.attributes.clone()).unwrap_or_default();
                    merged.extend(attributes.iter().map(|(name, value)| (name.clone(), value.clone())));
                    let size = attribute_bytes(&merged);
                    match over_cap(module, order, line_id, size, total, &limits) {
                        Some(message) => {
                            total += stored(line_id);
                            LineResult::Failed {
                                status: LineStatus::ServerError,
                                message,
                            }
                        }
                        None => {
                            total += size;
                            LineResult::Complete {
                                attributes,
                                note: note.map(|note| cut(note, &limits)),
                            }
                        }
                    }
                }
                LineResult::Failed { status, message } => LineResult::Failed {
                    status,
                    message: cut(message, &limits),
                },
            };
            (line_id, result)
        })
        .collect()
}

/// Why keeping `size` bytes of attributes on line `line_id` (besides `total`
/// on the module's other lines of the order) is over a cap, if it is.
fn over_cap(module: &str, order: &Order, line_id: LineId, size: usize, total: usize, limits: &ModuleLimits) -> Option<String> {
    let line_cap = limits.line_attributes_bytes as usize;
    if size > line_cap {
        return Some(format!(
            "module {module} would keep {size} bytes of attributes on line {line_id}, over its limit of {line_cap} bytes (line_attributes_bytes); none of its answer for the line is used"
        ));
    }
    let order_cap = limits.order_attributes_bytes as usize;
    let order_total = total.saturating_add(size);
    if order_total > order_cap {
        return Some(format!(
            "module {module} would keep {order_total} bytes of attributes on its lines of order {} with line {line_id}, over its limit of {order_cap} bytes (order_attributes_bytes); none of its answer for the line is used",
            order.number
        ));
    }
    None
}

/// A revoke answer with its note or reason cut to the module's `note_bytes`.
pub(super) fn bounded_revoke(limits: &ModuleLimits, result: RevokeResult) -> RevokeResult {
    match result {
        RevokeResult::Revoked { note } => RevokeResult::Revoked {
            note: note.map(|note| cut(note, limits)),
        },
        RevokeResult::NotRevoked { reason } => RevokeResult::NotRevoked {
            reason: cut(reason, limits),
        },
    }
}

/// `text` cut to the module's `note_bytes`.
fn cut(text: String, limits: &ModuleLimits) -> String {
    let limit = limits.note_bytes.get() as usize;
    if text.len() <= limit {
        return text;
    }
    format!("{} (note_bytes)", truncated(&text, limit))
}
