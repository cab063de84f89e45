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
    /// The path, without the query.
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    pub api_key: Option<String>,
    /// The `Authorization` header.
    pub authorization: Option<String>,
    pub idempotency_key: Option<String>,
    /// The JSON body, or Null (the token endpoint's form is not kept).
    pub body: serde_json::Value,
    /// The status it was answered with (0 while it is being answered).
    pub status: u16,
}

/// A request to the token endpoint, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    pub token_type: Option<String>,
    /// The status it was answered with.
    pub status: u16,
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
    requests: Vec<RecordedRequest>,
    token_requests: Vec<TokenRequest>,
    /// The JWT signing key's generation: rotating it invalidates every
    /// token issued before.
    key_generation: u64,
    /// Opaque bearer tokens issued (without `token_type=jwt`), valid until
    /// the key rotates.
    bearer_tokens: HashSet<String>,
    /// `expires_in` of the tokens it issues, in seconds.
    token_lifetime_s: u64,
    /// The token endpoint answers this instead of a token.
    token_failure: Option<Reply>,
}

pub(super) struct LmsState {
    pub api_key: String,
    /// Makes this stand-in's signing keys its own.
    nonce: u128,
    data: Mutex<Data>,
}

/// An hour, as the LMS's JWT_EXPIRATION defaults to.
const DEFAULT_TOKEN_LIFETIME_S: u64 = 3600;

impl LmsState {
    pub fn new(api_key: &str) -> LmsState {
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or(0);
        LmsState {
            api_key: api_key.to_string(),
            nonce,
            data: Mutex::new(Data {
                token_lifetime_s: DEFAULT_TOKEN_LIFETIME_S,
                ..Data::default()
            }),
        }
    }

    /// The JWT signing key in use.
    pub fn signing_key(&self) -> Vec<u8> {
        format!("lms-standin-{}-{}", self.nonce, self.data().key_generation).into_bytes()
    }

    /// Invalidates every token issued so far.
    pub fn rotate_signing_key(&self) {
        let mut data = self.data();
        data.key_generation += 1;
        data.bearer_tokens.clear();
    }

    pub fn token_failure(&self) -> Option<Reply> {
        self.data().token_failure.clone()
    }

    pub fn set_token_failure(&self, failure: Option<Reply>) {
        self.data().token_failure = failure;
    }

    pub fn token_lifetime_s(&self) -> u64 {
        self.data().token_lifetime_s
    }

    pub fn set_token_lifetime_s(&self, seconds: u64) {
        self.data().token_lifetime_s = seconds;
    }

    /// A new opaque bearer token.
    pub fn issue_bearer(&self) -> String {
        let mut data = self.data();
        let token = format!("opaque-{}-{}", self.nonce, data.bearer_tokens.len() + 1);
        data.bearer_tokens.insert(token.clone());
        token
    }

    pub fn is_valid_bearer(&self, token: &str) -> bool {
        self.data().bearer_tokens.contains(token)
    }

    pub fn record_token_request(&self, request: TokenRequest) {
        self.data().token_requests.push(request);
    }

    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.data().token_requests.clone()
    }

    /// Sets the status of the request recorded at `index`.
    pub fn answered(&self, index: usize, status: u16) {
        if let Some(request) = self.data().requests.get_mut(index) {
            request.status = status;
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

    /// Records `request`; returns its index.
    pub fn record(&self, request: RecordedRequest) -> usize {
        let mut data = self.data();
        data.requests.push(request);
        data.requests.len() - 1
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

    /// Enrolls (or re-enrolls, with the new mode). Enrolling again in the
    /// same mode changes nothing (as the LMS: 200 again), and does not count
    /// as a fulfillment.
    pub fn enroll(&self, username: &str, course_key: &str, mode: &str, idempotency_key: Option<&str>) {
        let mut data = self.data();
        let enrollment = Enrollment {
            mode: mode.to_string(),
            is_active: true,
        };
        let previous = data
            .enrollments
            .insert((username.to_string(), course_key.to_string()), enrollment.clone());
        if previous.as_ref() != Some(&enrollment)
            && let Some(key) = idempotency_key
        {
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

    /// The entitlements of `username` (every one when None), oldest first,
    /// with their uuids.
    pub fn entitlements_of(&self, username: Option<&str>) -> Vec<(String, Entitlement)> {
        let data = self.data();
        let mut found: Vec<(String, Entitlement)> = data
            .entitlements
            .iter()
            .filter(|(_, entitlement)| username.is_none_or(|user| entitlement.user == user))
            .map(|(uuid, entitlement)| (uuid.clone(), entitlement.clone()))
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    }

    /// Creates an entitlement and returns its uuid; None when one exists for
    /// the same course and order.
    pub fn create_entitlement(&self, entitlement: Entitlement, idempotency_key: Option<&str>) -> Option<String> {
        let mut data = self.data();
        let duplicate = data.entitlements.values().any(|existing| {
            // The model's unique (course_uuid, order_number): a NULL order
            // number (sent as none) never conflicts.
            !entitlement.order_number.is_empty()
                && existing.course_uuid == entitlement.course_uuid
                && existing.order_number == entitlement.order_number
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

}
