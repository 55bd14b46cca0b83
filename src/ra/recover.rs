//! Start-up recovery after a crash: finish what was in flight so nothing stays stuck
//! (DESIGN.md principle 4).

use super::Ra;
use super::order::authz_status;
use crate::acme::problem::ProblemType;
use crate::acme::{AuthorizationStatus, ChallengeStatus, OrderStatus, Problem};
use crate::error::Error;
use crate::store::{AuthzRecord, IssuanceIntent, OrderRecord, ValidationInFlight};

impl Ra {
    /// Ends interrupted issuances (the order becomes invalid: the token may or may not have
    /// signed, and a serial is never reused) and restarts interrupted validations of authorizations still pending. Every
    /// order in `processing` has an intent, committed in the same transaction.
    pub async fn recover(&self) -> Result<(), Error> {
        let now = self.now();
        let (failed, revalidate) = self
            .write(move |tx| {
                let mut failed = 0usize;
                for intent in tx.all::<IssuanceIntent>()? {
                    tx.delete::<IssuanceIntent>(&intent.serial)?;
                    if let Some(mut order) = tx.get::<OrderRecord>(&intent.order_id)?
                        && order.status == OrderStatus::Processing
                    {
                        order.status = OrderStatus::Invalid;
                        order.error = Some(Problem::new(
                            ProblemType::ServerInternal,
                            "issuance was interrupted; create a new order",
                        ));
                        tx.put(&order)?;
                        failed += 1;
                    }
                }
                let mut revalidate = Vec::new();
                for marker in tx.all::<ValidationInFlight>()? {
                    let Some(authz) = tx.get::<AuthzRecord>(&marker.authz_id)? else {
                        tx.delete::<ValidationInFlight>(&marker.key)?;
                        continue;
                    };
                    let mut authz = authz;
                    let still_pending = authz.status == AuthorizationStatus::Pending
                        && authz_status(&authz, now) == AuthorizationStatus::Pending;
                    let Some(challenge) =
                        authz.challenges.iter_mut().find(|c| c.kind == marker.kind)
                    else {
                        tx.delete::<ValidationInFlight>(&marker.key)?;
                        continue;
                    };
                    if challenge.status != ChallengeStatus::Processing {
                        tx.delete::<ValidationInFlight>(&marker.key)?;
                    } else if still_pending {
                        let token = challenge.token.clone();
                        revalidate.push((authz, marker.kind, token));
                    } else {
                        // Deactivated or expired meanwhile: nothing to validate, and the
                        // challenge must not stay `processing`.
                        challenge.status = ChallengeStatus::Invalid;
                        challenge.error = Some(Problem::new(
                            ProblemType::Unauthorized,
                            "the authorization is no longer pending",
                        ));
                        tx.put(&authz)?;
                        tx.delete::<ValidationInFlight>(&marker.key)?;
                    }
                }
                Ok((failed, revalidate))
            })
            .await?;
        if failed > 0 {
            tracing::warn!(
                orders = failed,
                "orders interrupted during issuance were marked invalid"
            );
        }
        for (authz, kind, token) in revalidate {
            let account: Option<crate::store::AccountRecord> = {
                let id = authz.account_id.clone();
                self.read(move |r| Ok(r.get(&id)?)).await?
            };
            let Some(account) = account else { continue };
            let request = self.validation_request(&authz, &kind, &token, &account);
            let ra = self.clone();
            tokio::spawn(async move { ra.validate(authz.id, request).await });
        }
        Ok(())
    }
}
