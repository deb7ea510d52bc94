-- Run once by the official postgres image on an empty volume: one database per service, because each
-- service owns its schema (created and upgraded by its own Alembic history when the service starts).
CREATE DATABASE orders;
CREATE DATABASE invoicing;
CREATE DATABASE shipping;
