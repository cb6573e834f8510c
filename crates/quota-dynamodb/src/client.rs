//! Where the table is, and an SDK client for it (the lean build: rustls on ring, the HTTP
//! client handed over explicitly).

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

/// Table, endpoint and region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoConfig {
    /// The table name.
    pub table: String,
    /// A DynamoDB-compatible endpoint (an emulator, DynamoDB Local); `None` for AWS itself.
    pub endpoint: Option<String>,
    /// The AWS region.
    pub region: String,
}

impl DynamoConfig {
    /// From the environment: `QUOTA_DYNAMODB_TABLE` (default `quota-tracker`),
    /// `QUOTA_DYNAMODB_ENDPOINT` (default: AWS), `AWS_REGION` (default `us-east-1`).
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// As [`DynamoConfig::from_env`], the variables read through `lookup`; one set to
    /// nothing but blanks counts as unset.
    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        Self {
            table: var("QUOTA_DYNAMODB_TABLE").unwrap_or_else(|| "quota-tracker".to_owned()),
            endpoint: var("QUOTA_DYNAMODB_ENDPOINT"),
            region: var("AWS_REGION").unwrap_or_else(|| "us-east-1".to_owned()),
        }
    }
}

/// An SDK client for `config`. With an endpoint and no AWS credentials in the environment,
/// dummy credentials are used (emulators accept any).
pub async fn connect(config: &DynamoConfig) -> Client {
    Client::from_conf(client_config(config).await.build())
}

/// The SDK client configuration [`connect`] uses, to add to before building (tests add
/// interceptors that inject faults).
pub async fn client_config(config: &DynamoConfig) -> aws_sdk_dynamodb::config::Builder {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    // Retries are the store's own (it classifies each failure, and knows when a write may
    // have landed); every attempt is bounded in time, so a paused server cannot hang a sync.
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(3))
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .timeout_config(timeouts)
        .region(Region::new(config.region.clone()));
    if let Some(endpoint) = &config.endpoint {
        loader = loader.endpoint_url(endpoint);
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            loader = loader.credentials_provider(Credentials::new(
                "local",
                "local",
                None,
                None,
                "quota-verify",
            ));
        }
    }
    aws_sdk_dynamodb::config::Builder::from(&loader.load().await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_set_win_and_blank_ones_count_as_unset() {
        let set = DynamoConfig::from_vars(|name| match name {
            "QUOTA_DYNAMODB_TABLE" => Some("quotas".to_owned()),
            "QUOTA_DYNAMODB_ENDPOINT" => Some("http://127.0.0.1:4567".to_owned()),
            "AWS_REGION" => Some("eu-west-1".to_owned()),
            _ => None,
        });
        assert_eq!(set.table, "quotas");
        assert_eq!(set.endpoint.as_deref(), Some("http://127.0.0.1:4567"));
        assert_eq!(set.region, "eu-west-1");
        let blank = DynamoConfig::from_vars(|_| Some("  ".to_owned()));
        assert_eq!(blank.table, "quota-tracker");
        assert_eq!(blank.endpoint, None);
        assert_eq!(blank.region, "us-east-1");
    }
}
