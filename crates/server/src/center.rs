//! The contact center's adapters around the pure `contact` core: what its commands need from
//! the outside world. So far: the webhook block's HTTP call (`webhook`) and phone numbers as
//! the customer lookup compares them (`phone`); contact records are stored by `store-sqlite`.
//! The event loop, the agent desktop and the chat widget come next (see the README's status).

pub mod admin;
pub mod contacts_page;
pub mod lookup;
pub mod messages;
pub mod phone;
pub mod recordings;
pub mod runtime;
pub mod supervisor;
pub mod web;
pub mod webhook;
