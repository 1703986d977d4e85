//! The Entra side of a simulated tenant, started together: the demo, the daemon and every
//! collector test need the same three pieces wired the same way.

use crate::Dataset;
use crate::graph::GraphSim;
use crate::loopback::{LoopbackError, TestCa};
use crate::token::{TokenSim, TokenSimConfig};

/// A test CA, the token endpoint and Graph serving a dataset's sign-ins and risk detections, all over TLS on
/// 127.0.0.1 (azure_identity accepts only `https://` authorities). Graph accepts the tokens
/// this token endpoint issues.
pub struct EntraSims {
    /// Trust it through the collector's `ca_file` ([`TestCa::write_ca_file`]).
    pub ca: TestCa,
    pub token: TokenSim,
    pub graph: GraphSim,
}

impl EntraSims {
    pub async fn start(data: &Dataset, token: TokenSimConfig) -> Result<EntraSims, LoopbackError> {
        let ca = TestCa::generate()?;
        let token = TokenSim::start(token, &ca).await?;
        let graph = GraphSim::start(
            &data.signins,
            &data.signin_arrival_delay_ms,
            token.validator(),
            Some(&ca),
        )
        .await?;
        graph.set_risk_detections(&data.risk_detections, &data.risk_detection_arrival_delay_ms);
        Ok(EntraSims { ca, token, graph })
    }
}
