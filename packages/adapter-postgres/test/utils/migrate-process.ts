// A separate process applying the migrations: `migrate-process.ts <url> <schema>`; prints the report.
import * as Migrations from "../../src/Migrations.ts"

const [url, schema] = process.argv.slice(2)
const report = await Migrations.runPromise({ connectionString: url!, schema: schema! })
console.log(JSON.stringify(report))
