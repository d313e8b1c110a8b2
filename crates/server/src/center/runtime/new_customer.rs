//! The "new customer" form: an agent holding a contact from somebody the lookup did not know
//! creates their record, and from then on the contact belongs to that record (its history, the
//! contact record's customer reference).

use contact::{ContactId, Stage};

use super::{Loop, ToAgent, Work};
use crate::center::lookup::FoundCustomer;
use crate::clock;

/// Fields a form may send, and characters per value (the store takes at most 1,000 as well).
const MAX_FIELDS: usize = 50;

impl Loop {
    pub(super) fn create_customer(
        &mut self,
        agent: String,
        contact: ContactId,
        fields: Vec<(String, String)>,
    ) {
        let Some(live) = self.center.contact(contact) else {
            return;
        };
        // Only the agent the contact rings at or is connected to, and only once.
        let holds = match &live.stage {
            Stage::Offered { agent: holder, .. } | Stage::Connected { agent: holder } => {
                *holder == agent
            }
            _ => false,
        };
        if !holds || self.found.contains_key(&contact) {
            return;
        }
        let Some(customers) = self.customers.clone() else {
            return;
        };
        let from = live.from.clone();
        let inbox = self.inbox.clone();
        let fields: Vec<(String, String)> = fields.into_iter().take(MAX_FIELDS).collect();
        tokio::spawn(async move {
            let user = agent.clone();
            let created = tokio::task::spawn_blocking(move || {
                let actor = records::Actor {
                    user: &user,
                    session: "contact-center",
                    now_ms: clock::utc_now().timestamp_millis(),
                };
                customers
                    .source
                    .create(customers.database.as_ref(), actor, &from, &fields)
                    .map_err(|error| error.to_string())
            })
            .await
            .unwrap_or_else(|error| Err(error.to_string()));
            let _ = inbox.send(Work::Created {
                agent,
                contact,
                created,
            });
        });
    }

    pub(super) fn customer_created(
        &mut self,
        agent: &str,
        contact: ContactId,
        created: Result<FoundCustomer, String>,
    ) {
        match created {
            Ok(customer) => {
                self.tell_agent(
                    agent,
                    ToAgent::CustomerCreated {
                        contact: contact.0,
                        record_id: customer.record_id,
                        customer: customer.fields.clone(),
                    },
                );
                self.blank.remove(&contact);
                // A contact that already ended keeps no state here; its record was written
                // without the customer, who is known from the next contact on.
                if self.center.contact(contact).is_some() {
                    self.found.insert(contact, (customer, Vec::new()));
                }
            }
            Err(error) => {
                tracing::warn!(%contact, %error, "creating a customer record failed");
                self.tell_agent(
                    agent,
                    ToAgent::Problem {
                        contact: contact.0,
                        message: format!("The customer record was not created: {error}"),
                    },
                );
            }
        }
    }
}
