"""The blueprints shipped with Blocks CRM, as package data: each folder here is one
(``blocks blueprint list`` shows them)."""
