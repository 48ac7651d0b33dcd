-- Person A: Ann Archer, customer 1, stored as Ann.Archer@Mail.Example in a
-- citext column.
-- person: email ann.archer@mail.example
-- second: email bob@mail.example

-- dataset: customer
SELECT "CustomerId"::text FROM "Customer" WHERE "CustomerId" = 1;

-- dataset: invoice
SELECT "InvoiceId"::text FROM "Invoice" WHERE "CustomerId" = 1;

-- dataset: invoice_line
-- Lines of her invoices 1 and 3; line 1 of invoice 2 is Bob's.
SELECT l."InvoiceId"::text || '/' || l."LineNo"::text
FROM "InvoiceLine" AS l JOIN "Invoice" AS i USING ("InvoiceId")
WHERE i."CustomerId" = 1;

-- dataset: employee
-- None: her support rep Nancy is not hers.
SELECT "EmployeeId"::text FROM "Employee" WHERE false;

-- Person B: Bob Brown, customer 2, whose support rep is Nancy too and who
-- shares nothing else with Ann: his own invoice and its line.

-- second-dataset: customer
SELECT "CustomerId"::text FROM "Customer" WHERE "CustomerId" = 2;

-- second-dataset: invoice
SELECT "InvoiceId"::text FROM "Invoice" WHERE "CustomerId" = 2;

-- second-dataset: invoice_line
-- Line 1 of his invoice 2 (line number 1 repeats on Ann's invoices).
SELECT l."InvoiceId"::text || '/' || l."LineNo"::text
FROM "InvoiceLine" AS l JOIN "Invoice" AS i USING ("InvoiceId")
WHERE i."CustomerId" = 2;

-- second-dataset: employee
-- None: Nancy, his support rep, is not his.
SELECT "EmployeeId"::text FROM "Employee" WHERE false;
