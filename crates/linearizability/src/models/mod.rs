//! Built-in models.

mod cas_register;
mod kv;
mod quota;
mod register;

pub use cas_register::{CasOp, CasRegister};
pub use kv::{Kv, KvOp};
pub use quota::{Quota, QuotaOp, QuotaOutput};
pub use register::{Register, RegisterOp};
