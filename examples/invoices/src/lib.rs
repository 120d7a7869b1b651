//! An MCP server over an embedded SQLite database of several orgs' invoices, guarded by
//! captix. Tools: `list_invoices`, `get_invoice`, `create_refund`. Each applies the ticket's
//! row filters (from [`captix_mcp::McpDecision`]) in its SQL as bound parameters, so an agent
//! limited to org acme never sees another org's row, even through `get_invoice` by id.
#![forbid(unsafe_code)]

use std::sync::{Arc, Mutex};

use captix::Constraint;
use captix_mcp::McpDecision;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, GetPromptRequestParams,
    GetPromptResponse, GetPromptResult, JsonObject, ListPromptsResult, ListResourcesResult,
    ListToolsResult, PaginatedRequestParams, Prompt, PromptMessage, ReadResourceRequestParams,
    ReadResourceResponse, ReadResourceResult, Resource, ResourceContents, Role, ServerCapabilities,
    ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use rusqlite::types::Value;

/// The seeded database: invoices of acme, globex and initech.
pub fn database() -> rusqlite::Result<rusqlite::Connection> {
    let db = rusqlite::Connection::open_in_memory()?;
    db.execute_batch(
        "CREATE TABLE invoices (id INTEGER PRIMARY KEY, org TEXT NOT NULL, number TEXT NOT NULL,
                                status TEXT NOT NULL, amount INTEGER NOT NULL);
         CREATE TABLE refunds (id INTEGER PRIMARY KEY, invoice INTEGER NOT NULL, amount INTEGER NOT NULL);
         INSERT INTO invoices VALUES
           (1, 'acme', 'INV-001', 'open', 120), (2, 'acme', 'INV-002', 'paid', 80),
           (3, 'acme', 'INV-003', 'void', 45), (4, 'globex', 'INV-101', 'open', 9000),
           (5, 'globex', 'INV-102', 'paid', 300), (6, 'initech', 'INV-201', 'open', 15);",
    )?;
    Ok(db)
}

/// The MCP handler.
#[derive(Clone)]
pub struct Invoices {
    db: Arc<Mutex<rusqlite::Connection>>,
    /// Refuse calls that carry no captix decision (always, except in the benchmark's
    /// unguarded app).
    guarded: bool,
}

/// Columns a row filter may name (by JSON Pointer): never interpolated from input.
const COLUMNS: &[(&str, &str)] = &[
    ("/org", "org"),
    ("/status", "status"),
    ("/number", "number"),
    ("/amount", "amount"),
    ("/id", "id"),
];

/// Appends `AND col = ?` ... for the decision's row filters on known columns to `sql`, and their
/// parameters to `params`.
fn filters_sql(d: Option<&McpDecision>, sql: &mut String, params: &mut Vec<Value>) {
    use std::fmt::Write;
    for f in d.map(|d| d.allowed.filters()).unwrap_or_default() {
        let Some((_, col)) = COLUMNS.iter().find(|(p, _)| *p == f.arg) else {
            continue;
        };
        for c in &f.constraints {
            match &c.constraint {
                Constraint::Eq(v) => {
                    // The common case, without the formatting machinery.
                    sql.push_str(" AND ");
                    sql.push_str(col);
                    sql.push_str(" = ?");
                    params.push(value(v));
                }
                Constraint::OneOf(vs) => {
                    let _ = write!(sql, " AND {col} IN ({})", vec!["?"; vs.len()].join(", "));
                    params.extend(vs.iter().map(value));
                }
                Constraint::Prefix(p) => {
                    let _ = write!(sql, " AND substr({col}, 1, length(?)) = ?");
                    params.push(Value::Text(p.clone()));
                    params.push(Value::Text(p.clone()));
                }
                Constraint::Range { min, max } => {
                    if let Some(m) = min {
                        let _ = write!(sql, " AND {col} >= ?");
                        params.push(Value::Integer(*m));
                    }
                    if let Some(m) = max {
                        let _ = write!(sql, " AND {col} <= ?");
                        params.push(Value::Integer(*m));
                    }
                }
            }
        }
    }
}

fn value(v: &captix::Scalar) -> Value {
    match v {
        captix::Scalar::Str(s) => Value::Text(s.clone()),
        captix::Scalar::Int(i) => Value::Integer(*i),
        captix::Scalar::Bool(b) => Value::Integer(i64::from(*b)),
        captix::Scalar::Null => Value::Null,
    }
}

fn schema(props: serde_json::Value, required: &[&str]) -> Arc<JsonObject> {
    let v = serde_json::json!({ "type": "object", "properties": props, "required": required });
    Arc::new(v.as_object().cloned().unwrap_or_default())
}

fn text(v: serde_json::Value) -> CallToolResponse {
    CallToolResult::success(vec![ContentBlock::text(v.to_string())]).into()
}

impl Invoices {
    /// A handler over a database.
    pub fn new(db: rusqlite::Connection) -> Self {
        Invoices {
            db: Arc::new(Mutex::new(db)),
            guarded: true,
        }
    }

    fn rows(&self, sql: &str, params: &[Value]) -> Result<Vec<serde_json::Value>, ErrorData> {
        let db = self.db.lock().unwrap_or_else(|e| e.into_inner());
        let mut stmt = db.prepare_cached(sql).map_err(internal)?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params.iter()), |r| {
                Ok(serde_json::json!({
                    "id": r.get::<_, i64>(0)?, "org": r.get::<_, String>(1)?, "number": r.get::<_, String>(2)?,
                    "status": r.get::<_, String>(3)?, "amount": r.get::<_, i64>(4)?,
                }))
            })
            .map_err(internal)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(internal)?;
        Ok(rows)
    }
}

fn internal(e: impl std::fmt::Display) -> ErrorData {
    ErrorData::internal_error(e.to_string(), None)
}

/// The prompts: name and text.
const PROMPTS: &[(&str, &str)] = &[
    (
        "triage",
        "Sort the open invoices by amount and name the three to chase first.",
    ),
    ("refund_policy", "Refunds above 500 need a second approver."),
];

impl Invoices {
    /// The captix layer's decision for this request, from the HTTP request's extensions;
    /// refused without one (always, except in the benchmark's unguarded app).
    fn decision(
        &self,
        context: &RequestContext<RoleServer>,
    ) -> Result<Option<McpDecision>, ErrorData> {
        let decision = context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|p| p.extensions.get::<McpDecision>())
            .cloned();
        if self.guarded && decision.is_none() {
            return Err(ErrorData::invalid_request(
                "no captix decision for this request",
                None,
            ));
        }
        Ok(decision)
    }
}

fn arg<'a>(args: &'a Option<JsonObject>, k: &str) -> Option<&'a serde_json::Value> {
    args.as_ref().and_then(|a| a.get(k))
}

impl ServerHandler for Invoices {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_prompts()
                .build(),
        )
    }

    /// One summary per org: `invoices://<org>/summary`.
    async fn list_resources(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let all = self.rows(
            "SELECT id, org, number, status, amount FROM invoices ORDER BY org",
            &[],
        )?;
        let mut orgs: Vec<&str> = all.iter().filter_map(|r| r["org"].as_str()).collect();
        orgs.dedup();
        Ok(ListResourcesResult::with_all_items(
            orgs.into_iter()
                .map(|org| {
                    Resource::new(
                        format!("invoices://{org}/summary"),
                        format!("{org} summary"),
                    )
                })
                .collect(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        self.decision(&context)?;
        let org = request
            .uri
            .strip_prefix("invoices://")
            .and_then(|r| r.strip_suffix("/summary"))
            .ok_or_else(|| ErrorData::invalid_params("no such resource", None))?;
        let sql = "SELECT id, org, number, status, amount FROM invoices WHERE org = ?";
        let rows = self.rows(sql, &[Value::Text(org.to_string())])?;
        let total: i64 = rows.iter().filter_map(|r| r["amount"].as_i64()).sum();
        let summary = serde_json::json!({ "org": org, "invoices": rows.len(), "total": total });
        Ok(ReadResourceResult::new(vec![ResourceContents::text(
            summary.to_string(),
            request.uri,
        )])
        .into())
    }

    async fn list_prompts(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(ListPromptsResult::with_all_items(
            PROMPTS
                .iter()
                .map(|(name, about)| Prompt::new(*name, Some(*about), None))
                .collect(),
        ))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        self.decision(&context)?;
        let (_, about) = PROMPTS
            .iter()
            .find(|(n, _)| *n == request.name)
            .ok_or_else(|| ErrorData::invalid_params("no such prompt", None))?;
        Ok(GetPromptResult::new(vec![PromptMessage::new_text(Role::User, *about)]).into())
    }

    async fn list_tools(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let org = serde_json::json!({ "type": "string" });
        Ok(ListToolsResult::with_all_items(vec![
            Tool::new(
                "list_invoices",
                "List an org's invoices",
                schema(
                    serde_json::json!({ "org": org, "status": { "type": "string" } }),
                    &["org"],
                ),
            ),
            Tool::new(
                "get_invoice",
                "One invoice by id",
                schema(
                    serde_json::json!({ "org": org, "id": { "type": "integer" } }),
                    &["org", "id"],
                ),
            ),
            Tool::new(
                "create_refund",
                "Refund part of an invoice",
                schema(
                    serde_json::json!({ "org": org, "id": { "type": "integer" }, "amount": { "type": "integer" } }),
                    &["org", "id", "amount"],
                ),
            ),
        ]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let decision = self.decision(&context)?;
        let args = &request.arguments;
        let org = arg(args, "org")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        let base = "SELECT id, org, number, status, amount FROM invoices WHERE org = ?";
        let mut params = vec![Value::Text(org.clone())];
        match request.name.as_ref() {
            "list_invoices" => {
                let mut sql = String::with_capacity(256);
                sql.push_str(base);
                if let Some(s) = arg(args, "status").and_then(|v| v.as_str()) {
                    sql.push_str(" AND status = ?");
                    params.push(Value::Text(s.to_string()));
                }
                filters_sql(decision.as_ref(), &mut sql, &mut params);
                if !self.guarded {
                    // The benchmarks' unguarded app runs the SQL the guarded app runs for their
                    // ticket (whose row filter, org = acme, `filters_sql` appends): a pair of
                    // calls then differs by the layer alone, not by this handler's SQL.
                    sql.push_str(" AND org = ?");
                    params.push(Value::Text(org.clone()));
                }
                sql.push_str(" ORDER BY id");
                Ok(text(serde_json::Value::Array(self.rows(&sql, &params)?)))
            }
            "get_invoice" | "create_refund" => {
                let id = arg(args, "id").and_then(|v| v.as_i64()).unwrap_or(-1);
                let mut sql = format!("{base} AND id = ?");
                params.push(Value::Integer(id));
                filters_sql(decision.as_ref(), &mut sql, &mut params);
                let Some(row) = self.rows(&sql, &params)?.into_iter().next() else {
                    return Ok(
                        CallToolResult::error(vec![ContentBlock::text("no such invoice")]).into(),
                    );
                };
                if request.name == "get_invoice" {
                    return Ok(text(row));
                }
                let amount = arg(args, "amount").and_then(|v| v.as_i64()).unwrap_or(0);
                let db = self.db.lock().unwrap_or_else(|e| e.into_inner());
                db.execute(
                    "INSERT INTO refunds (invoice, amount) VALUES (?, ?)",
                    rusqlite::params![id, amount],
                )
                .map_err(internal)?;
                Ok(text(
                    serde_json::json!({ "refunded": amount, "invoice": row }),
                ))
            }
            other => Err(ErrorData::invalid_params(format!("no tool {other}"), None)),
        }
    }
}

/// The whole app: the MCP endpoint at `/mcp` behind captix (the verifier's resource is the
/// audience tickets must name), and the metadata route.
pub fn app(
    verifier: Arc<captix::Verifier>,
    config: captix_mcp::Config,
) -> Result<captix_mcp::Protected, Box<dyn std::error::Error>> {
    Ok(captix_mcp::protect(
        mcp_router(Invoices::new(database()?)),
        verifier,
        config,
    )?)
}

/// The same MCP endpoint without captix: every call is served, with no decision to filter by
/// (`list_invoices` runs the SQL the benchmarks' ticket makes the guarded app run). Exists
/// only so the benchmarks can measure what the layer adds; never serve it.
#[doc(hidden)]
pub fn app_unguarded() -> rusqlite::Result<axum::Router> {
    let mut handler = Invoices::new(database()?);
    handler.guarded = false;
    Ok(mcp_router(handler))
}

fn mcp_router(handler: Invoices) -> axum::Router {
    let service: StreamableHttpService<Invoices, LocalSessionManager> = StreamableHttpService::new(
        move || Ok(handler.clone()),
        Default::default(),
        StreamableHttpServerConfig::default().with_json_response(true),
    );
    axum::Router::new().nest_service("/mcp", service)
}
