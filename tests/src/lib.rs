//! What the end-to-end tests stand on: the LMS stand-in (an external system
//! the enrollment and entitlement modules call) and the module artifacts.

pub mod artifacts;
pub mod lms;
