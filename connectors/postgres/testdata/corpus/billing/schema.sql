-- A billing system shaped after Chinook, with its quoted PascalCase names:
-- customers whose support rep is an employee, employees who report to
-- employees, invoices and invoice lines (a composite primary key). Hazards:
-- quoted mixed-case tables and columns, a citext NOT NULL customer email
-- stored mixed-case, a self-reference (ReportsTo), an employee who is also a
-- customer (a person on both sides of the support-rep relationship), CHECK
-- constraints, an invoice line table keyed by (InvoiceId, LineNo).
CREATE EXTENSION IF NOT EXISTS citext;

CREATE TABLE "Employee" (
  "EmployeeId" int PRIMARY KEY,
  "LastName" varchar(20) NOT NULL,
  "FirstName" varchar(20) NOT NULL,
  "Title" varchar(30),
  "ReportsTo" int REFERENCES "Employee",
  "Email" varchar(60) CHECK ("Email" LIKE '%@%')
);
CREATE TABLE "Customer" (
  "CustomerId" int PRIMARY KEY,
  "FirstName" varchar(40) NOT NULL,
  "LastName" varchar(20) NOT NULL,
  "Company" varchar(80),
  "Country" varchar(40),
  "Email" citext NOT NULL,
  "SupportRepId" int REFERENCES "Employee"
);
CREATE TABLE "Invoice" (
  "InvoiceId" int PRIMARY KEY,
  "CustomerId" int NOT NULL REFERENCES "Customer",
  "InvoiceDate" timestamp NOT NULL,
  "BillingAddress" varchar(70),
  "BillingCountry" varchar(40),
  "Total" numeric(10,2) NOT NULL CHECK ("Total" >= 0)
);
CREATE TABLE "InvoiceLine" (
  "InvoiceId" int NOT NULL REFERENCES "Invoice",
  "LineNo" int NOT NULL CHECK ("LineNo" > 0),
  "Description" text NOT NULL,
  "UnitPrice" numeric(10,2) NOT NULL,
  "Quantity" int NOT NULL CHECK ("Quantity" > 0),
  -- Not in Chinook: the payments retention rule has a duration, and the
  -- data map ages a record by a field of its own dataset.
  "CreatedAt" timestamp NOT NULL DEFAULT '2024-01-01 00:00',
  PRIMARY KEY ("InvoiceId", "LineNo")
);

-- Employees: Andrew (1) manages Nancy (2) and Jane (3). Nancy is the support
-- rep of Ann and Bob; Jane of Cat. Jane is also customer 4 under her private
-- address. Person A is Ann (customer 1).
INSERT INTO "Employee" VALUES
  (1, 'Adams', 'Andrew', 'General Manager', NULL, 'andrew@chinook.example'),
  (2, 'Edwards', 'Nancy', 'Sales Manager', 1, 'Nancy@Chinook.Example'),
  (3, 'Peacock', 'Jane', 'Sales Support Agent', 1, 'jane@chinook.example');
INSERT INTO "Customer" VALUES
  (1, 'Ann', 'Archer', 'Archer & Co', 'UK', 'Ann.Archer@Mail.Example', 2),
  (2, 'Bob', 'Brown', 'Archer & Co', 'UK', 'bob@mail.example', 2),
  (3, 'Cat', 'Cole', NULL, 'DE', 'CAT@MAIL.EXAMPLE', 3),
  (4, 'Jane', 'Peacock', NULL, 'CA', 'jane.private@mail.example', 2);
INSERT INTO "Invoice" VALUES
  (1, 1, '2023-01-01 00:00', '1 Elm Street', 'UK', 3.98),
  (2, 2, '2023-01-02 00:00', '1 Elm Street', 'UK', 0.99),
  (3, 1, '2024-02-01 00:00', '1 Elm Street', 'UK', 1.98),
  (4, 3, '2024-02-02 00:00', '9 Linden', 'DE', 5.94),
  (5, 4, '2024-02-03 00:00', '7 Maple', 'CA', 0.99);
-- Line numbers repeat across invoices: (1, 1) is Ann's, (2, 1) is Bob's.
INSERT INTO "InvoiceLine" VALUES
  (1, 1, 'Balls to the Wall', 0.99, 2, '2023-01-01'),
  (1, 2, 'Restless and Wild', 1.00, 2, '2024-01-01'),
  (2, 1, 'Put The Finger On You', 0.99, 1, '2024-01-01'),
  (3, 1, 'Inject The Venom', 0.99, 2, '2024-01-01'),
  (4, 1, 'Evil Walks', 0.99, 6, '2024-01-01'),
  (5, 1, 'Snowballed', 0.99, 1, '2024-01-01');
