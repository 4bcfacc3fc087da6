// Run panel firmware under the real MicroPython interpreter (webassembly port) on the host.
// usage: node run.mjs <firmware dir> <fakes dir> <scenario.py> [<after-power-cut.py> ...]
// Each scenario runs in a fresh interpreter; files the previous one left in /flash carry over,
// as flash does across a power cut. Everything printed goes to stdout; a Python error exits 1.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript/micropython.mjs";

const [firmwareDir, fakesDir, ...scenarios] = process.argv.slice(2);
let flash = {};

for (const scenario of scenarios) {
  const mp = await loadMicroPython({ stdout: (line) => process.stdout.write(line + "\n"),
                                     stderr: (line) => process.stderr.write(line + "\n") });
  mp.FS.mkdir("/lib");
  mp.FS.mkdir("/flash");
  for (const dir of [firmwareDir, fakesDir]) {
    for (const name of readdirSync(dir).filter((n) => n.endsWith(".py") && n !== "main.py")) {
      mp.FS.writeFile(join("/lib", name), readFileSync(join(dir, name)));
    }
  }
  for (const [name, data] of Object.entries(flash)) mp.FS.writeFile(join("/flash", name), data);
  try {
    await mp.runPythonAsync("import sys, os\nsys.path.append('/lib')\nos.chdir('/flash')\n" +
                            readFileSync(scenario, "utf8"));
  } catch (err) {
    process.stderr.write(String(err) + "\n");
    process.exit(1);
  }
  flash = {};
  for (const name of mp.FS.readdir("/flash").filter((n) => n !== "." && n !== "..")) {
    flash[name] = mp.FS.readFile(join("/flash", name));
  }
  process.stdout.write("--- power cut ---\n");
}
