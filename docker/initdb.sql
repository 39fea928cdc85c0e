-- One PostgreSQL server, one database per bounded context.
CREATE DATABASE accounts;
CREATE DATABASE gateway;
CREATE DATABASE aggregation;
