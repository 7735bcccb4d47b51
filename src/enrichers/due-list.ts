/** Items that wait until a time (or until they are ready, if that comes first): the enrichers' one pending list. */
export class DueList<T> {
  private items: { item: T; dueAt: number }[] = [];

  get size(): number {
    return this.items.length;
  }

  add(item: T, dueAt: number): void {
    this.items.push({ item, dueAt });
  }

  /** Removes and returns the items due at `now`, and those `ready` says need not wait. */
  take(now: number, ready: (item: T) => boolean = () => false): T[] {
    if (this.items.length === 0) return [];
    const due: T[] = [];
    this.items = this.items.filter(({ item, dueAt }) => {
      if (dueAt > now && !ready(item)) return true;
      due.push(item);
      return false;
    });
    return due;
  }

  /** Removes and returns the first item that matches. */
  remove(match: (item: T) => boolean): T | undefined {
    const at = this.items.findIndex(({ item }) => match(item));
    return at < 0 ? undefined : this.items.splice(at, 1)[0]?.item;
  }

  some(match: (item: T) => boolean): boolean {
    return this.items.some(({ item }) => match(item));
  }
}
