//! The database logins of every command that connects (`run`, `backfill`, `load-user-purchase`,
//! `export-user-purchase`, `load-warehouse`, `report`, `check`): one place that turns a URL and
//! the configuration (`source.auth` / `warehouse.auth`, `*.password_secret_arn`) into a
//! [`DbLogin`], so every command takes the same keys and logs in the same way.

use std::sync::Arc;

use aws_config::SdkConfig;

use crate::clock::Clock;
use crate::config::{Config, DbAuth};
use crate::db::login::{login_for, DbLogin, DbRole};
use crate::db::DbError;
use crate::error::Result;
use crate::pipeline::Databases;

/// The login to `url` for `role`, checked once now (the secret read, the token signed, the
/// Redshift credentials asked), so that a missing permission fails the command at its start.
/// `sdk` is the backend's AWS configuration when the command has one.
pub(crate) async fn login(
    role: DbRole,
    url: &str,
    config: &Config,
    sdk: Option<&SdkConfig>,
    clock: Arc<dyn Clock>,
) -> Result<DbLogin> {
    let login = login_for(role, url, config, sdk, clock).await.map_err(|e| DbError::Login(Box::new(e)))?;
    login.check().await.map_err(|e| DbError::Login(Box::new(e)))?;
    Ok(login)
}

/// The databases of a run: the source and the warehouse logins. A PostgreSQL warehouse that is
/// the source database itself (same URL, no login of its own) logs in as the source does.
pub(crate) async fn run_databases(
    config: &Config,
    sdk: Option<&SdkConfig>,
    clock: Arc<dyn Clock>,
    source_url: Option<&str>,
    warehouse_url: Option<&str>,
    embedded_warehouse: Option<std::path::PathBuf>,
) -> Result<Databases> {
    let source = match source_url {
        Some(url) => Some(login(DbRole::Source, url, config, sdk, Arc::clone(&clock)).await?),
        None => None,
    };
    let warehouse_is_source = warehouse_url.is_some() && warehouse_url == source_url;
    let warehouse = match warehouse_url {
        Some(_) if warehouse_is_source && config.warehouse_auth() == DbAuth::Password => source.clone(),
        Some(url) => Some(login(DbRole::Warehouse, url, config, sdk, clock).await?),
        None => None,
    };
    Ok(Databases { source, warehouse, embedded_warehouse })
}
