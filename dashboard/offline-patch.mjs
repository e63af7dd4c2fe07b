// Run after `npm ci` (package.json "postinstall"): makes Evidence work with no network.
//
// Evidence stores each source query as Parquet and reads it with DuckDB-WASM's read_parquet,
// both when `evidence sources` merges its batches and in the browser. DuckDB-WASM 1.32 has no
// Parquet reader built in: it downloads the parquet extension from DuckDB's extension site on
// first use, so with no network `evidence sources` hangs and a page never gets its data. This
// patch keeps Evidence's files and names but stores Arrow IPC streams in them, which
// DuckDB-WASM loads with its built-in insertArrowFromIPCStream. Each edit names the exact text
// it replaces: a new Evidence version without it stops the install here, loudly.
import fs from 'node:fs';
import path from 'node:path';

const MARKER = '/* boussole offline patch */';
const universalSql = path.join('node_modules', '@evidence-dev', 'universal-sql', 'src');

const edits = [
	{
		file: path.join(universalSql, 'build-parquet.js'),
		replacements: [
			[
				"import fs from 'fs/promises';",
				`import fs from 'fs/promises';\nimport { tableFromIPC as ipcToTable, Table as ArrowTable } from 'apache-arrow'; ${MARKER}`
			],
			[
				'const parquetBuffer = writeParquet(Table.fromIPCStream(IPC), writerProperties);',
				'const parquetBuffer = IPC;'
			],
			[
				'\tawait initDB();\n',
				''
			],
			[
				'\tawait query(copy);\n',
				'\tconst batches = [];\n' +
					'\tfor (const file of tmpFilenames) batches.push(...ipcToTable(await fs.readFile(file)).batches);\n' +
					"\tawait fs.writeFile(outputFilepath, tableToIPC(new ArrowTable(batches), 'stream'));\n"
			],
			["\tawait emptyDbFs('*');\n\n\tfn_done();", '\tfn_done();']
		]
	},
	{
		file: path.join(universalSql, 'client-duckdb', 'node.js'),
		replacements: [
			[
				"import { createRequire } from 'module';",
				`import { createRequire } from 'module';\nimport { readFileSync } from 'fs'; ${MARKER}`
			],
			[
				'\t\t\tdb.registerFileURL(\n' +
					'\t\t\t\tfile_name,\n' +
					'\t\t\t\turl.split(pathDelimiterRegex).join(path.sep),\n' +
					'\t\t\t\tDuckDBDataProtocol.NODE_FS,\n' +
					'\t\t\t\tfalse\n' +
					'\t\t\t);\n' +
					'\t\t\tconnection.query(\n' +
					'\t\t\t\t`CREATE OR REPLACE VIEW "${source}"."${table}" AS (SELECT * FROM read_parquet(\'${file_name}\'));`\n' +
					'\t\t\t);\n',
				'\t\t\tconnection.query(`DROP TABLE IF EXISTS "${source}"."${table}";`);\n' +
					'\t\t\tconnection.insertArrowFromIPCStream(\n' +
					'\t\t\t\treadFileSync(url.split(pathDelimiterRegex).join(path.sep)),\n' +
					'\t\t\t\t{ schema: source, name: table, create: true }\n' +
					'\t\t\t);\n'
			]
		]
	},
	{
		file: path.join(universalSql, 'client-duckdb', 'browser.js'),
		replacements: [
			[
				"import { arrowTableToJSON, getPromise, withTimeout } from './both.js';",
				`import { arrowTableToJSON, getPromise, withTimeout } from './both.js'; ${MARKER}`
			],
			[
				'\t\t\t\tawait db.registerFileURL(file_name, addBasePath(path), DuckDBDataProtocol.HTTP, false);\n' +
					'\t\t\t\tawait connection.query(\n' +
					'\t\t\t\t\t`CREATE OR REPLACE VIEW "${source}"."${table}" AS (SELECT * FROM read_parquet(\'${file_name}\'));`\n' +
					'\t\t\t\t);\n',
				'\t\t\t\tconst response = await fetch(addBasePath(path));\n' +
					'\t\t\t\tif (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);\n' +
					'\t\t\t\tconst stream = new Uint8Array(await response.arrayBuffer());\n' +
					'\t\t\t\tawait connection.query(`DROP TABLE IF EXISTS "${source}"."${table}";`);\n' +
					'\t\t\t\tawait connection.insertArrowFromIPCStream(stream, {\n' +
					'\t\t\t\t\tschema: source,\n' +
					'\t\t\t\t\tname: table,\n' +
					'\t\t\t\t\tcreate: true\n' +
					'\t\t\t\t});\n'
			]
		]
	}
];

for (const { file, replacements } of edits) {
	let text = fs.readFileSync(file, 'utf8');
	if (text.includes(MARKER)) continue;
	for (const [original, replacement] of replacements) {
		if (!text.includes(original)) {
			throw new Error(`offline-patch: ${file} no longer holds the text it replaces:\n${original}`);
		}
		text = text.replace(original, replacement);
	}
	fs.writeFileSync(file, text);
	console.log(`offline-patch: patched ${file}`);
}
