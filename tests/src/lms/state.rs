//! The stand-in's memory: enrollments, entitlements, requests, switches.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// An HTTP error answer: a status and the JSON `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub message: String,
}

impl Reply {
    pub fn new(status: u16, message: &str) -> Reply {
        Reply {
            status,
            message: message.to_string(),
        }
    }
}

/// How the stand-in misbehaves; the default is not at all.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Answer every request with this.
    pub fail_all: Option<Reply>,
    /// Answer the next N requests with this, then normally.
    pub fail_next: Option<(u32, Reply)>,
    /// Wait this long before answering.
    pub delay: Option<Duration>,
    /// Never answer.
    pub hang: bool,
    /// Do the work (enroll, create), then wait this long before answering:
    /// a client that dies meanwhile never learns that it was done.
    pub answer_delay: Option<Duration>,
}

/// A learner's enrollment in a course.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrollment {
    pub mode: String,
    pub is_active: bool,
}

/// A course entitlement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entitlement {
    pub user: String,
    pub course_uuid: String,
    pub mode: String,
    pub order_number: String,
    pub revoked: bool,
}

/// A request as received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub api_key: Option<String>,
    pub idempotency_key: Option<String>,
    /// The JSON body, or Null.
    pub body: serde_json::Value,
}

#[derive(Default)]
struct Data {
    behaviour: Behaviour,
    failing_courses: HashMap<String, Reply>,
    unknown_users: HashSet<String>,
    enrollments: HashMap<(String, String), Enrollment>,
    entitlements: HashMap<String, Entitlement>,
    next_entitlement: u64,
    fulfillments_by_key: HashMap<String, usize>,
    /// The answer to each (path, Idempotency-Key) that succeeded, replayed
    /// to a request that carries the same key again.
    replies_by_key: HashMap<(String, String), (u16, serde_json::Value)>,
    requests: Vec<RecordedRequest>,
}

pub(super) struct LmsState {
    pub api_key: String,
    data: Mutex<Data>,
}

impl LmsState {
    pub fn new(api_key: &str) -> LmsState {
        LmsState {
            api_key: api_key.to_string(),
            data: Mutex::new(Data::default()),
        }
    }

    fn data(&self) -> MutexGuard<'_, Data> {
        // A panicking test thread must not wedge the other tests' LMS.
        self.data.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn set_behaviour(&self, behaviour: Behaviour) {
        self.data().behaviour = behaviour;
    }

    pub fn heal(&self) {
        let mut data = self.data();
        data.behaviour = Behaviour::default();
        data.failing_courses.clear();
        data.unknown_users.clear();
    }

    pub fn fail_course(&self, course_key: &str, reply: Reply) {
        self.data().failing_courses.insert(course_key.to_string(), reply);
    }

    pub fn forget_user(&self, username: &str) {
        self.data().unknown_users.insert(username.to_string());
    }

    pub fn record(&self, request: RecordedRequest) {
        self.data().requests.push(request);
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.data().requests.clone()
    }

    /// The switches that apply to the request now: the failure to answer
    /// with (consuming one of `fail_next`), the delay, and whether to hang.
    pub fn misbehaviour(&self) -> (Option<Reply>, Option<Duration>, bool) {
        let mut data = self.data();
        let behaviour = &mut data.behaviour;
        let mut failure = behaviour.fail_all.clone();
        if failure.is_none()
            && let Some((remaining, reply)) = &mut behaviour.fail_next
            && *remaining > 0
        {
            *remaining -= 1;
            failure = Some(reply.clone());
        }
        (failure, behaviour.delay, behaviour.hang)
    }

    /// How long to wait between doing the work and answering.
    pub fn answer_delay(&self) -> Option<Duration> {
        self.data().behaviour.answer_delay
    }

    pub fn course_failure(&self, course_key: &str) -> Option<Reply> {
        self.data().failing_courses.get(course_key).cloned()
    }

    pub fn is_unknown_user(&self, username: &str) -> bool {
        self.data().unknown_users.contains(username)
    }

    pub fn enrollment(&self, username: &str, course_key: &str) -> Option<Enrollment> {
        self.data()
            .enrollments
            .get(&(username.to_string(), course_key.to_string()))
            .cloned()
    }

    /// Enrolls (or re-enrolls, with the new mode).
    pub fn enroll(&self, username: &str, course_key: &str, mode: &str, idempotency_key: Option<&str>) {
        let mut data = self.data();
        data.enrollments.insert(
            (username.to_string(), course_key.to_string()),
            Enrollment {
                mode: mode.to_string(),
                is_active: true,
            },
        );
        if let Some(key) = idempotency_key {
            *data.fulfillments_by_key.entry(key.to_string()).or_default() += 1;
        }
    }

    /// Deactivates; refuses (with the active mode) when the learner is
    /// actively enrolled in another mode.
    pub fn unenroll(&self, username: &str, course_key: &str, mode: &str) -> Result<(), String> {
        let mut data = self.data();
        let key = (username.to_string(), course_key.to_string());
        match data.enrollments.get_mut(&key) {
            Some(enrollment) if enrollment.is_active && enrollment.mode != mode => Err(enrollment.mode.clone()),
            Some(enrollment) => {
                enrollment.is_active = false;
                Ok(())
            }
            None => {
                data.enrollments.insert(
                    key,
                    Enrollment {
                        mode: mode.to_string(),
                        is_active: false,
                    },
                );
                Ok(())
            }
        }
    }

    pub fn entitlement(&self, uuid: &str) -> Option<Entitlement> {
        self.data().entitlements.get(uuid).cloned()
    }

    /// Creates an entitlement and returns its uuid; None when one exists for
    /// the same course and order.
    pub fn create_entitlement(&self, entitlement: Entitlement, idempotency_key: Option<&str>) -> Option<String> {
        let mut data = self.data();
        let duplicate = data.entitlements.values().any(|existing| {
            existing.course_uuid == entitlement.course_uuid && existing.order_number == entitlement.order_number
        });
        if duplicate {
            return None;
        }
        data.next_entitlement += 1;
        let uuid = format!("00000000-0000-4000-8000-{:012x}", data.next_entitlement);
        data.entitlements.insert(uuid.clone(), entitlement);
        if let Some(key) = idempotency_key {
            *data.fulfillments_by_key.entry(key.to_string()).or_default() += 1;
        }
        Some(uuid)
    }

    /// Revokes; false for an unknown uuid.
    pub fn revoke_entitlement(&self, uuid: &str) -> bool {
        match self.data().entitlements.get_mut(uuid) {
            Some(entitlement) => {
                entitlement.revoked = true;
                true
            }
            None => false,
        }
    }

    pub fn fulfillments_for_key(&self, idempotency_key: &str) -> usize {
        self.data().fulfillments_by_key.get(idempotency_key).copied().unwrap_or(0)
    }

    /// Every key that fulfilled something, with how many times.
    pub fn fulfillments_by_key(&self) -> HashMap<String, usize> {
        self.data().fulfillments_by_key.clone()
    }

    /// The earlier successful answer to `path` with `key`, if any.
    pub fn replay(&self, path: &str, key: &str) -> Option<(u16, serde_json::Value)> {
        self.data().replies_by_key.get(&(path.to_string(), key.to_string())).cloned()
    }

    /// Keeps a successful answer for replay.
    pub fn remember(&self, path: &str, key: &str, status: u16, body: serde_json::Value) {
        self.data().replies_by_key.insert((path.to_string(), key.to_string()), (status, body));
    }
}
