import { describe, expect, it } from 'vitest';
import { Channel } from '@tauri-apps/api/core';
import * as ipc from './ipc';
import { IpcError, toIpcError } from './ipc';
import { ERROR_HINTS } from './errors';
import { ChannelDriver, mockCommands } from './test/helpers';

describe('IPC errors', () => {
  it('maps a {code, message} rejection to an IpcError with the hint', async () => {
    mockCommands({
      unlock: () => Promise.reject({ code: 'wrong_key', message: 'the passphrase does not open this data' }),
    });
    const err = await ipc.unlock('nope').catch((e) => e);
    expect(err).toBeInstanceOf(IpcError);
    expect(err.code).toBe('wrong_key');
    expect(err.message).toBe('the passphrase does not open this data');
    expect(err.hint).toBe(ERROR_HINTS.wrong_key);
  });

  it('maps unknown codes, strings and Errors to internal', () => {
    expect(toIpcError({ code: 'martian', message: 'x' }).code).toBe('internal');
    expect(toIpcError('command ask not found').code).toBe('internal');
    expect(toIpcError('command ask not found').message).toBe('command ask not found');
    expect(toIpcError(new Error('boom')).message).toBe('boom');
  });
});

describe('IPC arguments', () => {
  it('sends camelCase arguments and a Channel as onEvent', async () => {
    const calls = mockCommands({
      ask: async (args) => {
        const ch = ChannelDriver.from(args);
        await ch.send({ type: 'token', text: 'hi' });
        return { conversation_id: 7, answer: null };
      },
      get_messages: () => [],
      rename_conversation: () => null,
      summarize: () => ({}),
    });
    const events: unknown[] = [];
    const result = await ipc.ask('why?', 3, (e) => events.push(e));
    expect(result.conversation_id).toBe(7);
    expect(events).toEqual([{ type: 'token', text: 'hi' }]);
    const askCall = calls.find((c) => c.cmd === 'ask')!;
    expect(askCall.args.question).toBe('why?');
    expect(askCall.args.conversationId).toBe(3);
    expect(askCall.args.onEvent).toBeInstanceOf(Channel);

    await ipc.getMessages(3);
    await ipc.renameConversation(3, 'T');
    await ipc.summarize({ note_id: 4 }, () => {});
    expect(calls.find((c) => c.cmd === 'get_messages')!.args).toEqual({ conversationId: 3 });
    expect(calls.find((c) => c.cmd === 'rename_conversation')!.args).toEqual({ conversationId: 3, title: 'T' });
    expect(calls.find((c) => c.cmd === 'summarize')!.args.target).toEqual({ note_id: 4 });
  });

  it('turns document bytes into a Uint8Array', async () => {
    mockCommands({ document_bytes: () => new Uint8Array([37, 80, 68, 70]).buffer });
    const bytes = await ipc.documentBytes('d1');
    expect(Array.from(bytes)).toEqual([37, 80, 68, 70]);
  });

  it('onDragDrop is a no-op outside Tauri', async () => {
    mockCommands({});
    const unlisten = await ipc.onDragDrop(() => {});
    expect(typeof unlisten).toBe('function');
  });
});
