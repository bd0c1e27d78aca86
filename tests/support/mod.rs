pub mod cli;
pub mod fault;
pub mod nginx;
pub mod server;
pub mod tls;
