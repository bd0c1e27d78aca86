pub mod cli;
pub mod fault;
pub mod h2server;
pub mod netns;
pub mod nginx;
pub mod server;
pub mod tls;
