pub mod fault;
pub mod server;
