//! A DynamoDB-compatible server for the integration tests.
//!
//! With `QUOTA_DYNAMODB_ENDPOINT` set, tests run against that endpoint (DynamoDB Local, a
//! real test table) and start no container. Otherwise each test suite starts the emulator
//! image built by `scripts/dynamodb-setup` through testcontainers, on a port the engine
//! chooses. A missing engine or image fails with the command that fixes it.

use std::sync::Arc;

use quota_dynamodb::{BlockingDynamoStore, DynamoConfig};
use quota_tracker::Clock;
use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::SyncRunner;
use testcontainers::{Container, GenericImage};

/// The emulator image `scripts/dynamodb-setup` builds.
pub const IMAGE: (&str, &str) = ("quota-verify/dynalite", "local");

/// A running server (a container, or the endpoint from the environment).
pub struct Server {
    /// `http://127.0.0.1:PORT` or `QUOTA_DYNAMODB_ENDPOINT`.
    pub endpoint: String,
    /// The container, when this suite started one (removed on drop).
    pub container: Option<Container<GenericImage>>,
}

impl Server {
    /// Starts the emulator, or uses `QUOTA_DYNAMODB_ENDPOINT`.
    pub fn start() -> Self {
        if let Ok(endpoint) = std::env::var("QUOTA_DYNAMODB_ENDPOINT") {
            return Self {
                endpoint,
                container: None,
            };
        }
        let image_present = std::process::Command::new("docker")
            .args(["image", "inspect", &format!("{}:{}", IMAGE.0, IMAGE.1)])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            image_present,
            "the emulator image {}:{} is missing (or no container engine answers): run scripts/dynamodb-setup",
            IMAGE.0, IMAGE.1
        );
        let container = GenericImage::new(IMAGE.0, IMAGE.1)
            .with_exposed_port(8000.tcp())
            .with_wait_for(WaitFor::message_on_stdout("Listening at"))
            .start()
            .unwrap_or_else(|e| panic!("cannot start {}:{}: {e}", IMAGE.0, IMAGE.1));
        let port = container
            .get_host_port_ipv4(8000.tcp())
            .unwrap_or_else(|e| panic!("no host port for the emulator: {e}"));
        Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            container: Some(container),
        }
    }

    /// A store on a fresh table of this server (created if missing).
    pub fn store(&self, table: &str, clock: Arc<dyn Clock>) -> BlockingDynamoStore {
        self.store_with(table, clock, |builder| builder)
    }

    /// A store whose SDK client configuration `customize` changes (fault interceptors).
    pub fn store_with(
        &self,
        table: &str,
        clock: Arc<dyn Clock>,
        customize: impl FnOnce(aws_sdk_dynamodb::config::Builder) -> aws_sdk_dynamodb::config::Builder,
    ) -> BlockingDynamoStore {
        let config = DynamoConfig {
            table: table.to_owned(),
            endpoint: Some(self.endpoint.clone()),
            region: "us-east-1".to_owned(),
        };
        let store = BlockingDynamoStore::connect_with(&config, clock, customize)
            .unwrap_or_else(|e| panic!("cannot start the store's runtime: {e}"));
        store
            .create_table_if_missing()
            .unwrap_or_else(|e| panic!("cannot create table {table}: {e}"));
        store
    }
}
