/** A participant server in a process of its own (bench/grpc-calls.ts): prints its address, serves until stdin closes. */
import { startParticipants } from './participants.js';

const set = await startParticipants(1);
process.stdout.write(`${set.addresses[0]}\n`);
process.stdin.resume();
process.stdin.on('end', () => void set.stop().then(() => process.exit(0)));
